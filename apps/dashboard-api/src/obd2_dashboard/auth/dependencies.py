from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from obd2_dashboard.auth.service import csrf_token_for, user_for_cookie
from obd2_dashboard.dependencies import SessionDep, SettingsDep
from obd2_dashboard.kit.security import constant_time_equal
from obd2_dashboard.models import User

SESSION_COOKIE = "obd2_session"
CSRF_COOKIE = "obd2_csrf"
# Set at sign-in and kept after sign-out: this browser has signed in to the account before.
KNOWN_BROWSER_COOKIE = "obd2_known"
CSRF_HEADER = "X-CSRF-Token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

session_cookie = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    description="Browser session, set by POST /api/v1/auth/login",
)
device_bearer = HTTPBearer(auto_error=False, description="Device token (ingest only)")


def _unauthorized(detail: str = "not signed in") -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail)


async def get_current_user(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    cookie: Annotated[str | None, Depends(session_cookie)],
) -> User:
    if not cookie:
        raise _unauthorized()
    secret = settings.session_secret()
    user = await user_for_cookie(session, secret, cookie)
    if user is None:
        raise _unauthorized("session expired or invalid; sign in again")
    if request.method not in _SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not constant_time_equal(sent, csrf_token_for(secret, cookie)):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"missing or wrong {CSRF_HEADER} header")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]
DeviceCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(device_bearer)]
