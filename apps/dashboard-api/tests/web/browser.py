"""A real `obd2-dashboard serve` (PostgreSQL, Redis) with a seeded account, and Debian's chromium.

Playwright drives /usr/bin/chromium (it cannot download its own browsers here); the web UI is
the production build in apps/web/dist, served by the API as in the embedded default.
"""

import asyncio
import itertools
import json
import math
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Request, Response
from sqlalchemy import text
from websockets.asyncio.client import connect

from obd2_dashboard.auth.service import create_user
from obd2_dashboard.devices.service import create_device_for
from obd2_dashboard.kit.db import make_engine, make_sessionmaker
from obd2_dashboard.models import Vehicle
from obd2_dashboard.ops.migrations import upgrade_head
from obd2_dashboard.settings import async_database_url
from obd2_dashboard.web.endpoints import REPO_WEB
from tests.conftest import (
    PASSWORD,
    REDIS_URL,
    SESSION_SECRET,
    _pg_url,
    create_pg_database,
    delete_redis_keys,
    drop_pg_database,
)
from tests.processes import CLI, Proc, Stack, stack

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DIST = REPO_WEB / "dist"
AXE = REPO_WEB / "node_modules" / "axe-core" / "axe.min.js"
RESULTS = REPO_WEB / "test-results"

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

EMAIL = "driver@example.com"
VEHICLE_NAME = "Family estate"
VEHICLE_VIN = "WVWZZZ1KZAW000001"
DEVICE_NAME = "Glovebox Pi"

# Chromium logs every 4xx answer to fetch as a console error; these are answers the UI expects
# (401: not signed in / wrong password / session gone; 404: no trouble-code history here).
EXPECTED_CONSOLE = re.compile(
    r"^Failed to load resource: the server responded with a status of (401|404) "
)

# The map's tiles: the server runs with the default MAP_TILE_URL (OpenStreetMap's), and every
# request a page makes to anywhere but this machine is aborted (Session.page), so the tests see
# the map as it is with no network and never reach the internet.
MAP_TILE_ORIGIN = "https://tile.openstreetmap.org"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})


def _leaves_this_machine(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in {"http", "https", "ws", "wss"} and parts.hostname not in LOOPBACK_HOSTS


def require_tools() -> None:
    if not (DIST / "index.html").is_file():
        pytest.fail("apps/web/dist is not built: run `make web` (make test does)")
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: run `make install` (apt-get install chromium)")
    if not AXE.is_file():
        pytest.fail("axe-core is not installed: run `make web` (npm ci in apps/web)")


async def _seed(database_url: str) -> tuple[int, str]:
    engine = make_engine(async_database_url(database_url))
    try:
        async with make_sessionmaker(engine)() as session:
            user = await create_user(session, EMAIL, PASSWORD)
            vehicle = Vehicle(owner_id=user.id, name=VEHICLE_NAME, vin=VEHICLE_VIN)
            session.add(vehicle)
            await session.flush()
            created = await create_device_for(session, vehicle, DEVICE_NAME)
            await session.commit()
            return vehicle.id, created.token
    finally:
        await engine.dispose()


async def _add_user(database_url: str, email: str) -> None:
    engine = make_engine(async_database_url(database_url))
    try:
        async with make_sessionmaker(engine)() as session:
            await create_user(session, email, PASSWORD)
            await session.commit()
    finally:
        await engine.dispose()


async def _execute(database_url: str, sql: str) -> None:
    engine = make_engine(async_database_url(database_url))
    try:
        async with engine.begin() as connection:
            await connection.execute(text(sql))
    finally:
        await engine.dispose()


@dataclass
class WebStack:
    url: str
    database_url: str
    vehicle_id: int
    token: str
    processes: Stack
    api: Proc
    _seq: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def next_seqs(self, n: int) -> list[int]:
        with self._lock:
            return [next(self._seq) for _ in range(n)]

    def ingest(self, samples: list[tuple[int, str, float]]) -> None:
        """Stores (ts, pid, value) samples as the seeded device, in batches the API accepts."""
        for start in range(0, len(samples), 4000):
            chunk = samples[start : start + 4000]
            seqs = self.next_seqs(len(chunk))
            body = {
                "samples": [
                    {"seq": seq, "ts": ts, "pid": pid, "value": value}
                    for seq, (ts, pid, value) in zip(seqs, chunk, strict=True)
                ]
            }
            response = httpx.post(
                f"{self.url}/api/v1/ingest",
                json=body,
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=30,
            )
            assert response.status_code == 200, response.text

    def crash_and_restart_api(self) -> None:
        """kill -9 of the API, then a new one on the same port (live streams resume via Redis)."""
        self.api.kill9()
        port = int(self.url.rsplit(":", 1)[1])
        self.api, _ = self.processes.serve(port)

    def add_user(self, email: str) -> None:
        """Another account (password PASSWORD), e.g. someone to share the vehicle with."""
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, _add_user(self.database_url, email)).result(30)

    def backdate_alert_rules(self, made_ms: int) -> None:
        """The vehicle's alert rules read samples from ``made_ms`` on, as if made then (a rule
        made now ignores the samples of before it)."""
        with ThreadPoolExecutor(1) as pool:
            pool.submit(
                asyncio.run,
                _execute(
                    self.database_url,
                    f"UPDATE alert_rules SET evaluates_from_ts = {int(made_ms)} "
                    f"WHERE vehicle_id = {int(self.vehicle_id)}",
                ),
            ).result(30)

    def end_all_sessions(self) -> None:
        """What expiry does on the server: every sign-in session is gone."""
        # Playwright's sync API runs an event loop in this thread: use a thread of our own.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(
                asyncio.run, _execute(self.database_url, "DELETE FROM user_sessions")
            ).result(30)


@contextmanager
def web_stack(tmp: Path, extra_env: dict[str, str] | None = None) -> Iterator[WebStack]:
    name = create_pg_database()
    prefix = f"obd2test:{uuid.uuid4().hex[:12]}:"
    try:
        database_url = _pg_url(name)
        upgrade_head(async_database_url(database_url))
        vehicle_id, token = asyncio.run(_seed(database_url))
        env = {
            "DATABASE_URL": database_url,
            "REDIS_URL": REDIS_URL,
            "REDIS_KEY_PREFIX": prefix,
            "SESSION_SECRET": SESSION_SECRET,
            "EMBEDDED_WORKER": "true",
            "WEB_DIST": str(DIST),
            # Every test signs in from 127.0.0.1.
            "LOGIN_MAX_ATTEMPTS_PER_IP": "100000",
            **(extra_env or {}),
        }
        with stack(tmp, env) as running:
            subprocess.run(
                [CLI, "redis-bootstrap"],
                env=running.env,
                check=True,
                capture_output=True,
                timeout=60,
            )
            api, url = running.serve()
            yield WebStack(url, database_url, vehicle_id, token, running, api)
    finally:
        drop_pg_database(name)
        delete_redis_keys(prefix)


class Feeder:
    """Uploads samples of the gauge PIDs every 100 ms, as an agent in a moving car would."""

    PIDS = (
        "RPM",
        "SPEED",
        "COOLANT_TEMP",
        "THROTTLE_POS",
        "ENGINE_LOAD",
        "FUEL_LEVEL",
        "ELM_VOLTAGE",
        "INTAKE_TEMP",
        "MAF",
    )
    MAX_RUN_S = 300.0

    def __init__(self, web: WebStack) -> None:
        self.web = web
        self.stop_event = threading.Event()
        self.running = threading.Event()
        self.running.set()
        self.thread = threading.Thread(target=self._run, name="feeder", daemon=True)
        self.sent = 0
        self.errors: list[str] = []

    def _values(self, t: float) -> list[tuple[str, float]]:
        phase = t / 4
        return [
            ("RPM", round(2200 + 1400 * math.sin(phase), 1)),
            ("SPEED", round(70 + 40 * math.sin(phase / 2), 1)),
            ("COOLANT_TEMP", round(88 + 2 * math.sin(phase / 5), 1)),
            ("THROTTLE_POS", round(30 + 25 * math.sin(phase * 1.3), 1)),
            ("ENGINE_LOAD", round(45 + 20 * math.sin(phase * 1.1), 1)),
            ("FUEL_LEVEL", 62.5),
            ("ELM_VOLTAGE", round(14.1 + 0.1 * math.sin(phase), 2)),
            ("INTAKE_TEMP", 24.0),
            ("MAF", round(12 + 6 * math.sin(phase), 2)),
        ]

    def _run(self) -> None:
        started = time.monotonic()
        with httpx.Client(base_url=self.web.url, timeout=10) as client:
            while not self.stop_event.is_set() and time.monotonic() - started < self.MAX_RUN_S:
                if not self.running.is_set():
                    self.stop_event.wait(0.1)
                    continue
                now_ms = int(time.time() * 1000)
                values = self._values(time.monotonic())
                seqs = self.web.next_seqs(len(values))
                body = {
                    "samples": [
                        {"seq": seq, "ts": now_ms, "pid": pid, "value": value}
                        for seq, (pid, value) in zip(seqs, values, strict=True)
                    ]
                }
                try:
                    response = client.post(
                        "/api/v1/ingest",
                        json=body,
                        headers={"Authorization": f"Bearer {self.web.token}"},
                    )
                    if response.status_code != 200:
                        self.errors.append(f"{response.status_code} {response.text[:200]}")
                    else:
                        self.sent += len(values)
                except httpx.HTTPError as exc:
                    self.errors.append(repr(exc))
                self.stop_event.wait(0.1)

    def pause(self) -> None:
        """The car stops sending (as a car whose adapter or agent went quiet); resume() goes on."""
        self.running.clear()

    def resume(self) -> None:
        self.running.set()

    def __enter__(self) -> "Feeder":
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop_event.set()
        self.thread.join(10)


class Agent:
    """The Bridge Agent's WebSocket: reports trouble codes and carries out clear commands."""

    def __init__(self, web: WebStack, report: dict[str, object]) -> None:
        self.web = web
        self.report = report
        self.connected = threading.Event()
        self.stop_event = threading.Event()
        self.commands: list[dict[str, object]] = []
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self._run, name="agent", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._talk())
        except Exception as exc:  # reported by __exit__ in the test's thread
            self.errors.append(repr(exc))

    async def _talk(self) -> None:
        url = self.web.url.replace("http://", "ws://", 1) + "/api/v1/bridge/ws"
        headers = {"Authorization": f"Bearer {self.web.token}"}
        async with connect(url, additional_headers=headers) as ws:
            await ws.send(json.dumps(self.report))
            self.connected.set()
            while not self.stop_event.is_set():
                try:
                    raw = await asyncio.wait_for(ws.recv(), 0.2)
                except TimeoutError:
                    continue
                message = json.loads(raw)
                if message.get("type") == "clear_dtcs":
                    self.commands.append(message)
                    result = {
                        "type": "command_result",
                        "id": message["id"],
                        "command": "clear_dtcs",
                        "ok": True,
                        "detail": "codes cleared",
                    }
                    await ws.send(json.dumps(result))

    def __enter__(self) -> "Agent":
        self.thread.start()
        assert self.connected.wait(15) or self.errors, "the agent did not connect"
        assert self.errors == [], self.errors
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop_event.set()
        self.thread.join(10)
        assert self.errors == [], self.errors


@dataclass
class Watch:
    """What a page must never do: log errors, leave rejections uncaught, call other origins."""

    base: str
    problems: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=lambda: [EXPECTED_CONSOLE])
    # Map tiles are the one thing a page may ask another origin for; the request is aborted.
    tiles_asked: list[str] = field(default_factory=list)

    def allow(self, pattern: str) -> None:
        """A console error this test provokes on purpose."""
        self.allowed.append(re.compile(pattern))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type != "error" or any(p.search(message.text) for p in self.allowed):
            return
        if message.location.get("url", "").startswith(f"{MAP_TILE_ORIGIN}/"):
            return  # the aborted tile's "net::ERR_FAILED"
        self.problems.append(f"console error: {message.text}")

    def _request(self, request: Request) -> None:
        url = request.url
        if url.startswith(f"{MAP_TILE_ORIGIN}/"):
            self.tiles_asked.append(url)
            return
        if not (url.startswith(f"{self.base}/") or url.startswith(("data:", "blob:"))):
            self.problems.append(f"request to another origin: {url}")

    def _response(self, response: Response) -> None:
        if response.status >= 500:
            self.problems.append(f"{response.status} from {response.url}")

    def attach(self, context: BrowserContext) -> None:
        # Also turns a rejection nobody handled into a console error we see.
        context.add_init_script(
            "window.addEventListener('unhandledrejection', (e) =>"
            " console.error('unhandled rejection: ' + (e.reason && e.reason.stack || e.reason)));"
        )
        context.on("console", self._console)
        context.on("weberror", lambda error: self.problems.append(f"uncaught: {error.error}"))
        context.on("request", self._request)
        context.on("response", self._response)


@dataclass
class Session:
    """Browser contexts for one test, all watched, all closed at the end."""

    browser: Browser
    web: WebStack
    watch: Watch
    contexts: list[BrowserContext] = field(default_factory=list)

    def page(
        self,
        *,
        viewport: dict[str, int] | None = None,
        signed_in: bool = True,
        bypass_csp: bool = False,
        accept_downloads: bool = False,
        email: str = EMAIL,
        locale: str = "en-GB",
    ) -> Page:
        context = self.browser.new_context(
            viewport=viewport or DESKTOP,  # type: ignore[arg-type]
            base_url=self.web.url,
            bypass_csp=bypass_csp,
            accept_downloads=accept_downloads,
            locale=locale,
            timezone_id="UTC",
        )
        self.watch.attach(context)
        # No test reaches the internet: whatever a page asks of another machine fails at once.
        context.route(_leaves_this_machine, lambda route: route.abort())
        self.contexts.append(context)
        if signed_in:
            response = context.request.post(
                f"{self.web.url}/api/v1/auth/login", data={"email": email, "password": PASSWORD}
            )
            assert response.status == 200, response.text()
        page = context.new_page()
        page.set_default_timeout(15_000)
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@contextmanager
def owner_api(web: WebStack, email: str = EMAIL) -> Iterator[httpx.Client]:
    """The API as ``email``, signed in, sending the CSRF header on writes."""
    with httpx.Client(base_url=web.url, timeout=10) as client:
        response = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert response.status_code == 200, response.text
        client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        yield client


def wait_for(what: str, probe: Callable[[], bool]) -> None:
    """Waits for the worker to have done its part (it runs in the API process)."""
    deadline = time.monotonic() + 30
    while not probe():
        assert time.monotonic() < deadline, f"the server never showed {what}"
        time.sleep(0.2)


def screenshot(page: Page, name: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def axe_violations(page: Page) -> list[str]:
    """Serious and critical axe-core violations on the page as it is now."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    found = []
    for violation in result["violations"]:
        if violation["impact"] in {"serious", "critical"}:
            targets = [node["target"] for node in violation["nodes"]][:5]
            found.append(f"{violation['id']} ({violation['impact']}): {targets}")
    return found
