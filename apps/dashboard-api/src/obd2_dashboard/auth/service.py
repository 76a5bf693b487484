import asyncio
import math
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from obd2_dashboard.auth.passwords import password_problem
from obd2_dashboard.auth.repository import UserRepository, UserSessionRepository
from obd2_dashboard.kit.broker import Backoff, Broker
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


class AuthError(Exception):
    pass


class RateLimitedError(AuthError):
    def __init__(self, retry_after_s: float) -> None:
        super().__init__("too many sign-in attempts; try again later")
        self.retry_after_s = max(1, math.ceil(retry_after_s))


class InvalidCredentialsError(AuthError):
    pass


class UserExistsError(AuthError):
    pass


class WeakPasswordError(AuthError):
    pass


def check_password(password: str, *, email: str = "") -> None:
    """Raises ``WeakPasswordError`` naming what is wrong with a password someone chose."""
    problem = password_problem(password, email=email)
    if problem is not None:
        raise WeakPasswordError(problem)


@dataclass(frozen=True, slots=True)
class SignedIn:
    user: User
    cookie_value: str
    csrf_token: str
    known_browser: str


def normalize_email(email: str) -> str:
    return email.strip().lower()


def _cookie_value(secret: bytes, token: str) -> str:
    return f"{token}.{sign(secret, 'session:' + token)}"


def known_browser_value(secret: bytes, email: str) -> str:
    """The cookie that tells sign-in this browser has signed in to ``email`` before."""
    return sign(secret, "known-browser:" + normalize_email(email))


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
    email = normalize_email(email)
    check_password(password, email=email)
    users = UserRepository(session)
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


def _login_backoffs(settings: Settings, email: str, client_ip: str) -> tuple[Backoff, Backoff]:
    """The (account, address) counter and the account's counter for unknown browsers."""

    def backoff(name: str, free_failures: int) -> Backoff:
        return Backoff(
            name,
            free_failures=free_failures,
            first_delay_s=settings.LOGIN_DELAY_S,
            max_delay_s=settings.LOGIN_MAX_DELAY_S,
            forget_after_s=settings.LOGIN_WINDOW_S,
        )

    return (
        backoff(f"login:failures:{email}:{client_ip}", settings.LOGIN_MAX_ATTEMPTS_PER_ACCOUNT),
        backoff(f"login:account:{email}", settings.LOGIN_MAX_FAILURES_UNKNOWN),
    )


async def sign_in(
    session: AsyncSession,
    broker: Broker,
    settings: Settings,
    *,
    email: str,
    password: str,
    client_ip: str,
    known_browser: str | None = None,
) -> SignedIn:
    """Signs in, or raises. Attackers cannot use it to lock the owner out: failures slow down
    the address they come from, and the account as a whole only for browsers and addresses
    that never signed in to it."""
    email = normalize_email(email)
    secret = settings.session_secret()
    ip_count, ip_left = await broker.hit(f"login:ip:{client_ip}", settings.LOGIN_WINDOW_S)
    if ip_count > settings.LOGIN_MAX_ATTEMPTS_PER_IP:
        raise RateLimitedError(ip_left)
    from_address, from_anywhere = _login_backoffs(settings, email, client_ip)
    known_address = f"login:known:{email}:{client_ip}"
    known = bool(known_browser) and constant_time_equal(
        known_browser or "", known_browser_value(secret, email)
    )
    if not known:
        known = (await broker.count(known_address))[0] > 0
    # Counted as a failure before the password is checked (and forgotten if it is right), so
    # that concurrent attempts cannot check more passwords than the limit allows.
    counters = [from_address] if known else [from_address, from_anywhere]
    wait_s = await broker.reserve_attempt(counters)
    if wait_s > 0:
        raise RateLimitedError(wait_s)

    user = await UserRepository(session).get_by_email(email)
    # argon2 takes tens of milliseconds of CPU on purpose: off the event loop, which other
    # requests share.
    verified = await asyncio.to_thread(
        verify_password, user.password_hash if user else None, password
    )
    if not verified or user is None:
        raise InvalidCredentialsError("wrong email or password")
    await broker.forget(from_address.name)
    await broker.forget(from_anywhere.name)
    await broker.forget(known_address)
    await broker.hit(known_address, settings.LOGIN_KNOWN_FOR_S)

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
    return SignedIn(
        user, cookie_value, csrf_token_for(secret, cookie_value), known_browser_value(secret, email)
    )


def session_digest(secret: bytes, cookie_value: str) -> str | None:
    """The hex SHA-256 of the cookie's session token (how sign-out names the session to the
    live streams it ends), or None for a cookie we did not sign."""
    token = token_from_cookie(secret, cookie_value)
    return None if token is None else token_digest(token).hex()


async def user_for_cookie(session: AsyncSession, secret: bytes, cookie_value: str) -> User | None:
    token = token_from_cookie(secret, cookie_value)
    if token is None:
        return None
    return await UserSessionRepository(session).get_live_user(token_digest(token), utcnow())


async def sign_out(session: AsyncSession, secret: bytes, cookie_value: str) -> None:
    token = token_from_cookie(secret, cookie_value)
    if token is not None:
        await UserSessionRepository(session).delete(token_digest(token))


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    """The account with this address (any spelling of it), or None."""
    return await UserRepository(session).get_by_email(normalize_email(email))


async def user_email(session: AsyncSession, user_id: int) -> str | None:
    user = await UserRepository(session).get(user_id)
    return user.email if user else None
