import re
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from obd2_dashboard.app import create_app
from obd2_dashboard.auth.dependencies import CSRF_COOKIE, SESSION_COOKIE
from obd2_dashboard.kit.db import utcnow
from obd2_dashboard.kit.security import sign
from obd2_dashboard.models import UserSession
from obd2_dashboard.settings import Settings
from tests.conftest import PASSWORD, REDIS_URL, World

LOGIN = "/api/v1/auth/login"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/auth/me"


def _set_cookies(response: httpx.Response) -> dict[str, str]:
    """Each Set-Cookie header by cookie name, as sent (attributes included)."""
    return {header.split("=", 1)[0]: header for header in response.headers.get_list("set-cookie")}


def _attributes(set_cookie: str) -> set[str]:
    return {part.strip().lower() for part in set_cookie.split(";")[1:]}


async def test_wrong_password_is_401_then_right_one_is_200(
    world: World, client: httpx.AsyncClient
) -> None:
    await world.user("alice@example.com")
    wrong = await client.post(LOGIN, json={"email": "alice@example.com", "password": "nope-nope"})
    assert wrong.status_code == 401
    assert wrong.json() == {"detail": "wrong email or password"}
    assert "set-cookie" not in wrong.headers

    right = await client.post(LOGIN, json={"email": "Alice@Example.com ", "password": PASSWORD})
    assert right.status_code == 200, right.text
    body = right.json()
    assert body["user"]["email"] == "alice@example.com"
    assert body["csrf_token"] == right.cookies[CSRF_COOKIE]
    me = await client.get(ME)
    assert me.status_code == 200
    assert me.json()["email"] == "alice@example.com"


async def test_unknown_account_is_the_same_401(client: httpx.AsyncClient) -> None:
    response = await client.post(LOGIN, json={"email": "who@example.com", "password": PASSWORD})
    assert response.status_code == 401
    assert response.json() == {"detail": "wrong email or password"}


async def test_cookie_flags_in_development(world: World, client: httpx.AsyncClient) -> None:
    await world.user("alice@example.com")
    response = await client.post(LOGIN, json={"email": "alice@example.com", "password": PASSWORD})
    cookies = _set_cookies(response)
    session_flags = _attributes(cookies[SESSION_COOKIE])
    assert "httponly" in session_flags
    assert "samesite=lax" in session_flags
    assert "secure" not in session_flags
    assert "path=/" in session_flags
    csrf_flags = _attributes(cookies[CSRF_COOKIE])
    assert "httponly" not in csrf_flags  # the page's script must read it
    assert "secure" not in csrf_flags
    assert "samesite=strict" in csrf_flags
    for flags in (session_flags, csrf_flags):
        assert "max-age=1209600" in flags  # SESSION_MAX_AGE_S: the server's expiry too


@pytest.fixture
async def production_app(settings: Settings) -> AsyncIterator[FastAPI]:
    production = Settings(
        OBD2_ENV="production",
        DATABASE_URL=settings.DATABASE_URL,
        REDIS_URL=settings.REDIS_URL or REDIS_URL,
        REDIS_KEY_PREFIX=settings.REDIS_KEY_PREFIX,
        SESSION_SECRET=settings.SESSION_SECRET,
        DATA_DIR=settings.DATA_DIR,
    )
    application = create_app(production)
    async with application.router.lifespan_context(application):
        yield application


async def test_cookies_are_secure_in_production(world: World, production_app: FastAPI) -> None:
    await world.user("alice@example.com")
    transport = httpx.ASGITransport(app=production_app, client=("203.0.113.9", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        response = await client.post(
            LOGIN, json={"email": "alice@example.com", "password": PASSWORD}
        )
    assert response.status_code == 200, response.text
    cookies = _set_cookies(response)
    session_flags = _attributes(cookies[SESSION_COOKIE])
    assert {"httponly", "samesite=lax", "secure"} <= session_flags
    assert {"samesite=strict", "secure"} <= _attributes(cookies[CSRF_COOKIE])


async def test_logout_ends_the_session_on_the_server(
    world: World, alice: httpx.AsyncClient
) -> None:
    old_cookie = alice.cookies[SESSION_COOKIE]
    csrf = alice.headers["X-CSRF-Token"]
    response = await alice.post(LOGOUT)
    assert response.status_code == 204
    assert (await alice.get(ME)).status_code == 401

    # A copy of the cookie kept from before sign-out is worth nothing now.
    transport = httpx.ASGITransport(app=world.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as replay:
        replay.cookies.set(SESSION_COOKIE, old_cookie)
        assert (await replay.get(ME)).status_code == 401
        again = await replay.post(LOGOUT, headers={"X-CSRF-Token": csrf})
        assert again.status_code == 401
    async with world.app.state.obd2.sessionmaker() as session:
        assert (await session.execute(select(UserSession))).scalars().all() == []


@pytest.mark.parametrize(
    "cookie",
    [
        "",
        "garbage",
        "abc.def",
        ".",
        "x" * 5000,
        "token." + "0" * 64,
        "\u00e9t\u00e9.0123",
        "a.b.c.d",
    ],
    ids=["empty", "garbage", "unsigned", "dot", "oversized", "wrong-signature", "latin1", "dots"],
)
async def test_forged_or_garbled_cookie_is_401(
    client: httpx.AsyncClient, alice: httpx.AsyncClient, cookie: str
) -> None:
    response = await client.get(ME, headers={b"Cookie": f"{SESSION_COOKIE}={cookie}".encode()})
    assert response.status_code == 401
    assert "detail" in response.json()


async def test_cookie_signed_with_another_secret_is_401(
    alice: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    token, _, _ = alice.cookies[SESSION_COOKIE].rpartition(".")

    forged = f"{token}.{sign(b'another-secret-' + b'y' * 32, 'session:' + token)}"
    client.cookies.set(SESSION_COOKIE, forged)
    assert (await client.get(ME)).status_code == 401


async def test_tampered_cookie_is_401(alice: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    cookie = alice.cookies[SESSION_COOKIE]
    flipped = ("A" if cookie[0] != "A" else "B") + cookie[1:]
    client.cookies.set(SESSION_COOKIE, flipped)
    assert (await client.get(ME)).status_code == 401


async def test_cookie_write_needs_the_csrf_header(alice: httpx.AsyncClient) -> None:
    good = alice.headers.pop("X-CSRF-Token")
    missing = await alice.post("/api/v1/vehicles", json={"name": "Car"})
    assert missing.status_code == 403
    assert "X-CSRF-Token" in missing.json()["detail"]
    wrong = await alice.post(
        "/api/v1/vehicles",
        json={"name": "Car"},
        headers={"X-CSRF-Token": good[:-1] + ("1" if good.endswith("0") else "0")},
    )
    assert wrong.status_code == 403
    garbage = await alice.post(
        "/api/v1/vehicles",
        json={"name": "Car"},
        headers={b"X-CSRF-Token": "\u00ff\u00fe".encode()},
    )
    assert garbage.status_code == 403
    assert (await alice.post(LOGOUT)).status_code == 403
    assert (await alice.get("/api/v1/vehicles")).json() == []  # nothing was written

    done = await alice.post(
        "/api/v1/vehicles", json={"name": "Car"}, headers={"X-CSRF-Token": good}
    )
    assert done.status_code == 201


async def test_csrf_token_of_another_session_is_refused(
    world: World, alice: httpx.AsyncClient
) -> None:
    await world.user("bob@example.com")
    bob = await world.login("bob@example.com")
    try:
        response = await alice.post(
            "/api/v1/vehicles",
            json={"name": "Car"},
            headers={"X-CSRF-Token": bob.headers["X-CSRF-Token"]},
        )
    finally:
        await bob.aclose()
    assert response.status_code == 403


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Small limits so that the tests reach them in a few attempts.
    return settings.model_copy(
        update={
            "LOGIN_MAX_ATTEMPTS_PER_IP": 6,
            "LOGIN_MAX_ATTEMPTS_PER_ACCOUNT": 3,
            "LOGIN_MAX_FAILURES_UNKNOWN": 3,
            "LOGIN_DELAY_S": 60,
        }
    )


def _client_from(app: FastAPI, ip: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_failures_per_account_slow_down_unknown_browsers(world: World) -> None:
    await world.user("alice@example.com")
    wrong = {"email": "alice@example.com", "password": "wrong-password"}
    # Each attempt from its own address: only the account's counter can stop them (browsers
    # that signed in to the account before are not: tests/auth/test_throttling.py).
    for n in range(3):
        async with _client_from(world.app, f"192.0.2.{n + 1}") as client:
            assert (await client.post(LOGIN, json=wrong)).status_code == 401
    async with _client_from(world.app, "192.0.2.50") as client:
        limited = await client.post(
            LOGIN, json={"email": "alice@example.com", "password": PASSWORD}
        )
        other = await client.post(LOGIN, json={"email": "bob@example.com", "password": PASSWORD})
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert "detail" in limited.json()
    assert other.status_code == 401  # another account is not locked out


async def test_attempts_per_ip_are_limited(world: World) -> None:
    await world.user("alice@example.com")
    async with _client_from(world.app, "192.0.2.77") as client:
        for n in range(6):
            email = f"nobody{n}@example.com"  # a new account each time: only the IP counts
            response = await client.post(LOGIN, json={"email": email, "password": "x"})
            assert response.status_code == 401
        limited = await client.post(
            LOGIN, json={"email": "alice@example.com", "password": PASSWORD}
        )
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    async with _client_from(world.app, "192.0.2.78") as other:
        ok = await other.post(LOGIN, json={"email": "alice@example.com", "password": PASSWORD})
    assert ok.status_code == 200


async def test_success_resets_the_account_counter(world: World) -> None:
    await world.user("alice@example.com")
    async with _client_from(world.app, "192.0.2.90") as client:
        for _ in range(2):
            wrong = {"email": "alice@example.com", "password": "bad-password"}
            assert (await client.post(LOGIN, json=wrong)).status_code == 401
        right = {"email": "alice@example.com", "password": PASSWORD}
        assert (await client.post(LOGIN, json=right)).status_code == 200
    async with _client_from(world.app, "192.0.2.91") as client:
        for _ in range(2):
            wrong = {"email": "alice@example.com", "password": "bad-password"}
            assert (await client.post(LOGIN, json=wrong)).status_code == 401
        assert (await client.post(LOGIN, json=right)).status_code == 200


async def test_expired_session_is_401(world: World, alice: httpx.AsyncClient) -> None:
    assert (await alice.get(ME)).status_code == 200
    async with world.app.state.obd2.sessionmaker() as session:
        await session.execute(
            update(UserSession).values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()
    response = await alice.get(ME)
    assert response.status_code == 401
    assert response.json()["detail"] == "session expired or invalid; sign in again"


DEVICE_PATHS = {"/api/v1/ingest", "/api/v1/torque"}


async def test_every_api_route_but_login_needs_a_session(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    document = app.openapi()
    walked = []
    for path, operations in document["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method in operations:
            if path in DEVICE_PATHS:
                continue  # a device token, not a session: tests/telemetry, tests/torque
            if path == LOGIN:
                continue
            url = re.sub(r"\{[a-z_]+\}", "1", path)
            response = await client.request(method.upper(), url, json={})
            assert response.status_code == 401, (method, path, response.text)
            assert response.json() == {"detail": "not signed in"}
            walked.append((method, path))
    assert len(walked) >= 8


# Writes authenticated by something other than the session cookie: nothing for CSRF to abuse.
NOT_COOKIE_WRITES = {("POST", LOGIN), ("POST", "/api/v1/ingest"), ("POST", "/api/v1/torque")}


async def test_every_cookie_write_needs_the_csrf_header(
    app: FastAPI, world: World, alice: httpx.AsyncClient
) -> None:
    """Walks the OpenAPI document: a write with the cookie and without the header is 403."""
    vehicle = (await alice.post("/api/v1/vehicles", json={"name": "Car"})).json()["id"]
    good = alice.headers.pop("X-CSRF-Token")
    writes = [
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        if method != "get" and (method.upper(), path) not in NOT_COOKIE_WRITES
    ]
    assert len(writes) >= 13
    for method, path in writes:
        url = re.sub(r"\{[a-z_]+\}", str(vehicle), path)
        for headers in ({}, {"X-CSRF-Token": "0" * 64}, {"X-CSRF-Token": good[:-2]}):
            response = await alice.request(method, url, json={}, headers=headers)
            assert response.status_code == 403, (method, path, headers, response.text)
            assert "X-CSRF-Token" in response.json()["detail"]
    # Nothing was done: the vehicle is as it was and the session still works.
    alice.headers["X-CSRF-Token"] = good
    assert (await alice.get(f"/api/v1/vehicles/{vehicle}")).json()["name"] == "Car"
    assert (await alice.get(ME)).status_code == 200
