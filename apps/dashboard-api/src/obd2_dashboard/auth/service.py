import asyncio
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from obd2_dashboard.auth.repository import UserRepository, UserSessionRepository
from obd2_dashboard.kit.broker import Broker
from obd2_dashboard.kit.db import utcnow
from obd2_dashboard.kit.security import (
    constant_time_equal,
    hash_password,
    sign,
    token_digest,
    verify_password,
)
from obd2_dashboard.models import User, UserSession
from obd2_dashboard.settings import Settings

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024  # what sign-in accepts (auth.schemas.Password)


class AuthError(Exception):
    pass


class RateLimitedError(AuthError):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__("too many sign-in attempts; try again later")
        self.retry_after_s = retry_after_s


class InvalidCredentialsError(AuthError):
    pass


class UserExistsError(AuthError):
    pass


class WeakPasswordError(AuthError):
    pass


@dataclass(frozen=True, slots=True)
class SignedIn:
    user: User
    cookie_value: str
    csrf_token: str


def normalize_email(email: str) -> str:
    return email.strip().lower()


def _cookie_value(secret: bytes, token: str) -> str:
    return f"{token}.{sign(secret, 'session:' + token)}"


def csrf_token_for(secret: bytes, cookie_value: str) -> str:
    return sign(secret, "csrf:" + cookie_value)


def token_from_cookie(secret: bytes, cookie_value: str) -> str | None:
    """The session token if the cookie carries our signature, else None (no database read)."""
    token, sep, signature = cookie_value.rpartition(".")
    if not sep or not token or len(cookie_value) > 256:
        return None
    if not constant_time_equal(signature, sign(secret, "session:" + token)):
        return None
    return token


async def create_user(
    session: AsyncSession, email: str, password: str, *, is_admin: bool = False
) -> User:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPasswordError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        # Sign-in refuses longer ones: such an account could never be used.
        raise WeakPasswordError(f"password must be at most {MAX_PASSWORD_LENGTH} characters")
    users = UserRepository(session)
    email = normalize_email(email)
    if await users.get_by_email(email) is not None:
        raise UserExistsError(f"a user with email {email} already exists")
    password_hash = await asyncio.to_thread(hash_password, password)  # slow on purpose
    try:
        async with session.begin_nested():
            return await users.add(
                User(email=email, password_hash=password_hash, is_admin=is_admin)
            )
    except IntegrityError as exc:
        raise UserExistsError(f"a user with email {email} already exists") from exc


async def sign_in(
    session: AsyncSession,
    broker: Broker,
    settings: Settings,
    *,
    email: str,
    password: str,
    client_ip: str,
) -> SignedIn:
    email = normalize_email(email)
    window = settings.LOGIN_WINDOW_S
    ip_count, ip_left = await broker.hit(f"login:ip:{client_ip}", window)
    if ip_count > settings.LOGIN_MAX_ATTEMPTS_PER_IP:
        raise RateLimitedError(ip_left)
    account_key = f"login:account:{email}"
    account_failures, account_left = await broker.count(account_key)
    if account_failures >= settings.LOGIN_MAX_ATTEMPTS_PER_ACCOUNT:
        raise RateLimitedError(account_left)

    user = await UserRepository(session).get_by_email(email)
    # argon2 takes tens of milliseconds of CPU on purpose: off the event loop, which other
    # requests share.
    verified = await asyncio.to_thread(
        verify_password, user.password_hash if user else None, password
    )
    if not verified or user is None:
        await broker.hit(account_key, window)
        raise InvalidCredentialsError("wrong email or password")
    await broker.forget(account_key)

    secret = settings.session_secret()
    token = secrets.token_urlsafe(32)
    now = utcnow()
    sessions = UserSessionRepository(session)
    await sessions.delete_expired(now)
    await sessions.add(
        UserSession(
            user_id=user.id,
            token_hash=token_digest(token),
            created_at=now,
            expires_at=now + timedelta(seconds=settings.SESSION_MAX_AGE_S),
        )
    )
    cookie_value = _cookie_value(secret, token)
    return SignedIn(user, cookie_value, csrf_token_for(secret, cookie_value))


async def user_for_cookie(session: AsyncSession, secret: bytes, cookie_value: str) -> User | None:
    token = token_from_cookie(secret, cookie_value)
    if token is None:
        return None
    return await UserSessionRepository(session).get_live_user(token_digest(token), utcnow())


async def sign_out(session: AsyncSession, secret: bytes, cookie_value: str) -> None:
    token = token_from_cookie(secret, cookie_value)
    if token is not None:
        await UserSessionRepository(session).delete(token_digest(token))
