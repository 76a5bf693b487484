from functools import partial

from fastapi import APIRouter, HTTPException, Request, Response, status

from obd2_dashboard.auth import service
from obd2_dashboard.auth.dependencies import (
    CSRF_COOKIE,
    KNOWN_BROWSER_COOKIE,
    SESSION_COOKIE,
    CurrentUser,
)
from obd2_dashboard.auth.schemas import LoginRequest, LoginResponse, UserRead
from obd2_dashboard.dependencies import BrokerDep, SessionDep, SettingsDep
from obd2_dashboard.kit.db import after_commit
from obd2_dashboard.kit.schemas import error_responses
from obd2_dashboard.live.revocations import announce_sign_out

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post(
    "/login",
    response_model=LoginResponse,
    responses=error_responses(401, 422, 429),
    summary="Sign in with email and password; sets the session cookie",
)
async def login(
    body: LoginRequest,
    request: Request,
    response: Response,
    session: SessionDep,
    broker: BrokerDep,
    settings: SettingsDep,
) -> LoginResponse:
    client_ip = request.client.host if request.client else "unknown"
    try:
        signed_in = await service.sign_in(
            session,
            broker,
            settings,
            email=body.email,
            password=body.password,
            client_ip=client_ip,
            known_browser=request.cookies.get(KNOWN_BROWSER_COOKIE),
        )
    except service.RateLimitedError as exc:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            str(exc),
            headers={"Retry-After": str(exc.retry_after_s)},
        ) from exc
    except service.InvalidCredentialsError as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc)) from exc
    secure = settings.is_production
    max_age = settings.SESSION_MAX_AGE_S
    response.set_cookie(
        SESSION_COOKIE,
        signed_in.cookie_value,
        max_age=max_age,
        httponly=True,
        secure=secure,
        samesite="lax",
        path="/",
    )
    # Readable by the page's script, which echoes it in X-CSRF-Token: a cross-site form cannot.
    response.set_cookie(
        CSRF_COOKIE,
        signed_in.csrf_token,
        max_age=max_age,
        httponly=False,
        secure=secure,
        samesite="strict",
        path="/",
    )
    # Sign-in from this browser is not slowed down by strangers' failures on the account.
    response.set_cookie(
        KNOWN_BROWSER_COOKIE,
        signed_in.known_browser,
        max_age=settings.LOGIN_KNOWN_FOR_S,
        httponly=True,
        secure=secure,
        samesite="strict",
        path="/api/v1/auth",
    )
    return LoginResponse(
        user=UserRead.model_validate(signed_in.user), csrf_token=signed_in.csrf_token
    )


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403),
    summary="End this browser's session",
)
async def logout(
    request: Request,
    _user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    broker: BrokerDep,
) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE, "")
    secret = settings.session_secret()
    await service.sign_out(session, secret, cookie)
    digest = service.session_digest(secret, cookie)
    if digest is not None:
        # Once the session is gone for good: its open live streams end now, not at a re-check.
        after_commit(session, partial(announce_sign_out, broker, digest))
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@router.get("/me", response_model=UserRead, responses=error_responses(401), summary="Who am I")
async def me(user: CurrentUser) -> UserRead:
    return UserRead.model_validate(user)
