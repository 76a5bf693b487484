"""A vehicle with a device and a signed-in owner on an app whose worker the test drives itself."""

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy import select, text, update

from obd2_dashboard.alerts.delivery import AlertDispatcher
from obd2_dashboard.app import create_app
from obd2_dashboard.kit.db import session_scope
from obd2_dashboard.models import Alert, AlertDelivery, AlertRule
from obd2_dashboard.ops.redis_bootstrap import bootstrap
from obd2_dashboard.settings import Settings
from obd2_dashboard.telemetry.worker import process_outbox
from obd2_testkit.network import LoopbackOnly, loopback_only
from obd2_testkit.ports import free_port
from tests.conftest import World, _empty_tables

# A public address that name lookups in tests may answer (example.com's): the guard refuses a
# connection to it, so it is only ever checked, never reached.
PUBLIC_ADDRESS = "93.184.215.14"


@pytest.fixture(autouse=True)
def network(monkeypatch: pytest.MonkeyPatch) -> LoopbackOnly:
    """Every alert test: no connection leaves loopback, no name is looked up in the real DNS."""
    return loopback_only(monkeypatch)


@pytest.fixture
async def quiet_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The app without its in-process worker: the test runs the worker's steps itself."""
    settings.EMBEDDED_WORKER = False
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        await _empty_tables(application)
        await bootstrap(application.state.obd2.broker)
        yield application


# When a test's rules are taken to have been made: before any sample it sends.
EARLIER = int(time.time() * 1000) - 24 * 3600 * 1000


@dataclass
class Car:
    app: FastAPI
    client: httpx.AsyncClient
    owner: httpx.AsyncClient
    vehicle_id: int
    device_id: int
    token: str
    seq: int = 0

    async def send(self, samples: Sequence[tuple[int, str, float]]) -> list[dict[str, object]]:
        """Ingests (ts, pid, value) samples as one batch, each with a fresh seq."""
        body: list[dict[str, object]] = []
        for ts, pid, value in samples:
            self.seq += 1
            body.append({"seq": self.seq, "ts": ts, "pid": pid, "value": value})
        await self.post(body)
        return body

    async def post(self, body: list[dict[str, object]]) -> dict[str, int]:
        response = await self.client.post(
            "/api/v1/ingest",
            json={"samples": body},
            headers={"Authorization": f"Bearer {self.token}"},
        )
        assert response.status_code == 200, response.text
        result: dict[str, int] = response.json()
        return result

    async def work(self) -> None:
        """What the worker does for every stored batch (rollups, then alert evaluation)."""
        async with session_scope(self.app.state.obd2.sessionmaker) as session:
            rows = await session.execute(text("SELECT id FROM ingest_outbox"))
            await process_outbox(session, [int(r[0]) for r in rows])

    async def alerts(self) -> list[Alert]:
        async with self.app.state.obd2.sessionmaker() as session:
            result = await session.execute(
                select(Alert).where(Alert.vehicle_id == self.vehicle_id).order_by(Alert.id)
            )
            return list(result.scalars().all())

    async def deliveries(self) -> list[AlertDelivery]:
        async with self.app.state.obd2.sessionmaker() as session:
            result = await session.execute(select(AlertDelivery).order_by(AlertDelivery.id))
            return list(result.scalars().all())

    async def rule(self, **fields: object) -> dict[str, object]:
        """A rule made through the API, then taken to have been made at ``made_ms`` (default: a
        day ago, before the samples a test sends minutes back); None: now, as the API made it."""
        made_ms = fields.pop("made_ms", EARLIER)
        assert made_ms is None or isinstance(made_ms, int)
        response = await self.owner.post(
            f"/api/v1/vehicles/{self.vehicle_id}/alert-rules", json={"name": "rule", **fields}
        )
        assert response.status_code == 201, response.text
        rule: dict[str, object] = response.json()
        if made_ms is not None:
            await self.backdate(int(str(rule["id"])), made_ms)
        return rule

    async def backdate(self, rule_id: int, made_ms: int) -> None:
        """The rule reads samples from ``made_ms`` on, as if it had been made then."""
        async with session_scope(self.app.state.obd2.sessionmaker) as session:
            await session.execute(
                update(AlertRule).where(AlertRule.id == rule_id).values(evaluates_from_ts=made_ms)
            )


@pytest.fixture
async def car(quiet_app: FastAPI) -> AsyncIterator[Car]:
    transport = httpx.ASGITransport(app=quiet_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        world = World(quiet_app, client)
        user = await world.user("owner@example.com")
        vehicle = await world.vehicle(user, "Alert car")
        device, token = await world.device(vehicle)
        owner = await world.login("owner@example.com")
        try:
            yield Car(quiet_app, client, owner, vehicle, device, token)
        finally:
            await owner.aclose()


def dispatcher_for(car: Car, settings: Settings, **overrides: object) -> AlertDispatcher:
    """The worker's delivery loop for ``car``'s app, with short backoffs (close it)."""
    tuned = settings.model_copy(
        update={"ALERT_WEBHOOK_BACKOFF_S": 0.05, "ALERT_WEBHOOK_TIMEOUT_S": 5, **overrides}
    )
    return AlertDispatcher(tuned, car.app.state.obd2.sessionmaker, mqtt=None)


async def dispatch_until_settled(dispatcher: AlertDispatcher, car: Car) -> None:
    """Runs the delivery loop's step until no delivery is pending (bounded)."""
    for _ in range(200):
        await dispatcher.dispatch_once()
        if all(d.status != "pending" for d in await car.deliveries()):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("deliveries still pending")


def minutes_ago(minutes: float) -> int:
    """An epoch-ms time this long ago, on a whole second."""
    now = int(time.time()) * 1000
    return now - int(minutes * 60_000)


ENDLESS = -1  # a scripted answer: 200 with a body that never ends


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1 and [::1] (one port): records every request, any path.

    Answers with the next scripted status (200 once the script is used up); ``redirect_to``
    goes into the Location header of 3xx answers.
    """

    port: int = 0
    script: list[int] = field(default_factory=list)
    redirect_to: str = ""
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
        async def anything(request: Request) -> Response:
            self.requests.append((request.url.path, dict(request.headers), await request.body()))
            status = self.script.pop(0) if self.script else 200
            if status == ENDLESS:
                return StreamingResponse(_endless())
            if 300 <= status < 400:
                return Response(status_code=status, headers={"Location": self.redirect_to})
            return Response(status_code=status)

        return app


async def _endless() -> AsyncIterator[bytes]:
    chunk = b"x" * 65536
    while True:
        yield chunk
        await asyncio.sleep(0)


def _listening(family: socket.AddressFamily, host: str, port: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver(port=free_port())
    sockets = [_listening(socket.AF_INET, "127.0.0.1", found.port)]
    try:
        sockets.append(_listening(socket.AF_INET6, "::1", found.port))
        config = uvicorn.Config(found.app(), log_config=None, lifespan="off")
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=sockets))
        try:
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
            yield found
        finally:
            server.should_exit = True
            await task
    finally:
        for sock in sockets:
            sock.close()


@dataclass
class Listener:
    """A loopback TCP port that is open but does not speak HTTP: it says ``banner`` (or
    nothing) and keeps the connection until the client goes."""

    port: int
    connections: int = 0


@pytest.fixture
def silent_listener() -> Iterator[Listener]:
    yield from _raw_listener(b"")


@pytest.fixture
def banner_listener() -> Iterator[Listener]:
    yield from _raw_listener(b"SSH-2.0-OpenSSH_9.2\r\n")


def _raw_listener(banner: bytes) -> Iterator[Listener]:
    listener = Listener(free_port())
    server = _listening(socket.AF_INET, "127.0.0.1", listener.port)
    server.listen()
    server.settimeout(0.1)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            listener.connections += 1
            held.append(conn)
            if banner:
                conn.sendall(banner)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        server.close()
