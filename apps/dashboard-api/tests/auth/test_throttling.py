"""Sign-in throttling that an attacker cannot turn against the account's owner."""

import asyncio
import threading
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI

from obd2_dashboard.auth import service
from obd2_dashboard.auth.dependencies import KNOWN_BROWSER_COOKIE
from obd2_dashboard.kit import security
from obd2_dashboard.settings import Settings
from tests.conftest import PASSWORD, World

LOGIN = "/api/v1/auth/login"
ME = "/api/v1/auth/me"
EMAIL = "owner@example.com"
WRONG = {"email": EMAIL, "password": "not the password at all"}
RIGHT = {"email": EMAIL, "password": PASSWORD}
PER_ADDRESS = 5
UNKNOWN = 10


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "LOGIN_MAX_ATTEMPTS_PER_IP": 1000,  # only the failure counters are under test
            "LOGIN_MAX_ATTEMPTS_PER_ACCOUNT": PER_ADDRESS,
            "LOGIN_MAX_FAILURES_UNKNOWN": UNKNOWN,
            "LOGIN_DELAY_S": 60,
        }
    )


def _from(app: FastAPI, address: str, cookie: str | None = None) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    headers = {"Cookie": f"{KNOWN_BROWSER_COOKIE}={cookie}"} if cookie else None
    return httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=headers)


async def test_strangers_failures_do_not_lock_the_owner_out(world: World) -> None:
    await world.user(EMAIL)
    async with _from(world.app, "198.51.100.20") as home:
        signed_in = await home.post(LOGIN, json=RIGHT)
        assert signed_in.status_code == 200, signed_in.text
        known_browser = signed_in.cookies[KNOWN_BROWSER_COOKIE]

        # One stranger, 20 failures from one address; then 20 more, each from its own address.
        async with _from(world.app, "192.0.2.66") as stranger:
            statuses = [(await stranger.post(LOGIN, json=WRONG)).status_code for _ in range(20)]
            refused_right = await stranger.post(LOGIN, json=RIGHT)
        assert statuses == [401] * PER_ADDRESS + [429] * (20 - PER_ADDRESS)
        assert refused_right.status_code == 429  # the stranger's address waits, right or not
        assert int(refused_right.headers["Retry-After"]) >= 1
        for n in range(20):
            async with _from(world.app, f"203.0.113.{100 + n}") as stranger:
                await stranger.post(LOGIN, json=WRONG)
        async with _from(world.app, "203.0.113.200") as new_browser:
            unknown = await new_browser.post(LOGIN, json=RIGHT)
        assert unknown.status_code == 429  # the account is protected from new places...

        # ... but not from the owner: the open session goes on, the known address and the
        # known browser (from an address it never used) sign in at once.
        assert (await home.get(ME)).status_code == 200
        home.cookies.clear()
        assert (await home.post(LOGIN, json=RIGHT)).status_code == 200
    async with _from(world.app, "192.0.2.201", cookie=known_browser) as travelling:
        again = await travelling.post(LOGIN, json=RIGHT)
    assert again.status_code == 200, again.text


async def test_a_forged_known_browser_cookie_is_no_exemption(world: World) -> None:
    await world.user(EMAIL)
    for n in range(UNKNOWN):
        async with _from(world.app, f"203.0.113.{n + 1}") as stranger:
            assert (await stranger.post(LOGIN, json=WRONG)).status_code == 401
    async with _from(world.app, "203.0.113.99", cookie="forged.value") as forger:
        assert (await forger.post(LOGIN, json=RIGHT)).status_code == 429


def _counting(function: Callable[..., bool], calls: list[str]) -> Callable[..., bool]:
    lock = threading.Lock()

    def counted(*args: object) -> bool:
        with lock:
            calls.append("check")
        return function(*args)

    return counted


async def test_concurrent_attempts_check_no_more_passwords_than_the_limit(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await world.user(EMAIL)
    checks: list[str] = []
    monkeypatch.setattr(service, "verify_password", _counting(security.verify_password, checks))

    async with _from(world.app, "192.0.2.44") as attacker:
        answers = await asyncio.gather(*(attacker.post(LOGIN, json=WRONG) for _ in range(20)))
    assert len(checks) == PER_ADDRESS
    assert sorted(a.status_code for a in answers) == [401] * PER_ADDRESS + [429] * 15

    # From as many addresses: the account's own counter holds the same way.
    checks.clear()
    await world.user("other@example.com")
    wrong = {**WRONG, "email": "other@example.com"}
    clients = [_from(world.app, f"203.0.113.{n + 1}") for n in range(20)]
    try:
        answers = await asyncio.gather(*(c.post(LOGIN, json=wrong) for c in clients))
    finally:
        for c in clients:
            await c.aclose()
    assert len(checks) == UNKNOWN
    assert sorted(a.status_code for a in answers) == [401] * UNKNOWN + [429] * (20 - UNKNOWN)
