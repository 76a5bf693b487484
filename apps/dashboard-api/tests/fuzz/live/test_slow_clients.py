"""Clients that never read their SSE stream or WebSocket while a fast publisher runs: the server
keeps a bounded amount for them (the hub's queues, the API process's RSS) and drops them."""

import asyncio
import base64
import json
import os
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx
import pytest
from redis import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from obd2_dashboard.auth.service import create_user
from obd2_dashboard.live import hub as hub_module
from obd2_dashboard.live.events import LIVE_STREAM_MAXLEN, LiveSample, encode_batch, live_stream
from obd2_dashboard.live.hub import SUBSCRIBER_QUEUE_SAMPLES
from obd2_dashboard.live.publisher import LivePublisher
from obd2_dashboard.models import Vehicle
from tests.conftest import PASSWORD, Served, World
from tests.live.sse import next_event, sse_events
from tests.serve_process import fresh_storage, serve_process

BATCH = 1_000


def _samples(first_seq: int, count: int) -> list[LiveSample]:
    ts = int(time.time() * 1000)
    return [LiveSample(first_seq + n, ts + n, "RPM", 800.0 + n % 100) for n in range(count)]


def _small_window(url: str) -> socket.socket:
    """A connection with a small receive buffer: what it leaves unread stays at the server."""
    host, port = url.split("://", 1)[1].split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    return sock


@contextmanager
def stalled_sse(url: str, path: str, cookie: str) -> Iterator[socket.socket]:
    """An SSE request from a client that never reads a byte of the answer."""
    host = url.split("://", 1)[1].split(":", maxsplit=1)[0]
    sock = _small_window(url)
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nCookie: obd2_session={cookie}\r\n\r\n"
    sock.sendall(request.encode())
    try:
        yield sock
    finally:
        sock.close()


def _masked_text_frame(text: str) -> bytes:
    payload = text.encode()
    assert len(payload) < 126
    mask = os.urandom(4)
    return (
        bytes([0x81, 0x80 | len(payload)])
        + mask
        + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    )


@asynccontextmanager
async def stalled_socket(url: str, cookie: str, vehicle: int) -> AsyncIterator[None]:
    """A browser socket subscribed to ``vehicle`` whose client reads nothing after the upgrade.

    Raw, because a WebSocket library reads on by itself whether its caller does or not.
    """
    host = url.split("://", 1)[1].split(":", maxsplit=1)[0]
    reader, writer = await asyncio.open_connection(sock=_small_window(url), limit=4096)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET /api/v1/streams/ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Cookie: obd2_session={cookie}\r\n\r\n"
        ).encode()
    )
    answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert answer.startswith(b"HTTP/1.1 101"), answer
    writer.write(_masked_text_frame(json.dumps({"type": "subscribe", "vehicle_id": vehicle})))
    try:
        yield
    finally:
        writer.transport.abort()


async def _viewer(served: Served) -> tuple[str, int]:
    transport = httpx.ASGITransport(app=served.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        world = World(served.app, client)
        user = await world.user("slow@example.com")
        vehicle = await world.vehicle(user)
        login = await client.post(
            "/api/v1/auth/login", json={"email": "slow@example.com", "password": PASSWORD}
        )
    return login.cookies["obd2_session"], vehicle


async def test_stalled_clients_hold_a_bounded_queue_and_are_dropped(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[hub_module._Subscriber] = []

    class Recorded(hub_module._Subscriber):
        def __init__(self) -> None:
            super().__init__()
            made.append(self)

    monkeypatch.setattr(hub_module, "_Subscriber", Recorded)
    cookie, vehicle = await _viewer(served)
    publisher = LivePublisher(served.app.state.obd2.broker)
    path = f"/api/v1/streams/vehicles/{vehicle}"
    with stalled_sse(served.url, path, cookie), stalled_sse(served.url, path, cookie):
        async with stalled_socket(served.url, cookie, vehicle):
            for _ in range(200):
                if len(made) == 3:
                    break
                await asyncio.sleep(0.05)
            assert len(made) == 3
            most = 0
            # Ten times the bound, as fast as the broker takes it.
            for n in range(10 * SUBSCRIBER_QUEUE_SAMPLES // BATCH):
                assert await publisher.publish(vehicle, _samples(n * BATCH, BATCH))
                await asyncio.sleep(0)
                most = max(most, *(s.queued_samples for s in made))
            for _ in range(200):
                if all(s.overflowed for s in made):
                    break
                await asyncio.sleep(0.05)
            # Dropped, and holding nothing more while their connections stay open.
            assert [s.overflowed for s in made] == [True, True, True]
            assert [s.queued_samples for s in made] == [0, 0, 0]
            assert all(s.queue.qsize() <= 1 for s in made)
            assert most <= SUBSCRIBER_QUEUE_SAMPLES
            reader = served.app.state.obd2.hub._readers.get(vehicle)
            assert reader is None or not (reader.subscribers & set(made))

    # Whoever reads still gets what is published.
    async with httpx.AsyncClient(base_url=served.url, cookies={"obd2_session": cookie}) as client:
        assert (await client.get("/healthz")).status_code == 200
        async with client.stream("GET", path) as response:
            events = sse_events(response)
            await next_event(events, "comment")
            await publisher.publish(vehicle, _samples(10**9, 1))
            assert (await next_event(events, "sample")).json()["seq"] == 10**9


# -- the API process as production runs it ------------------------------------------------------


def _rss_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


async def _seed(session: AsyncSession) -> int:
    user = await create_user(session, "slow@example.com", PASSWORD)
    vehicle = Vehicle(owner_id=user.id, name="Busy car")
    session.add(vehicle)
    await session.flush()
    return vehicle.id


def test_api_process_memory_stays_bounded_with_stalled_viewers(tmp_path: Path) -> None:
    """Full-size batches (5 000 samples, 1.6 MB decoded each) to four viewers that never read.

    Before the hub bounded its queues in samples, 256 such entries (420 MB) stayed queued.
    """
    with fresh_storage("postgres", tmp_path) as storage:
        vehicle = storage.run(_seed)
        assert storage.redis_url is not None
        redis = Redis.from_url(storage.redis_url)
        stream = storage.redis_prefix + live_stream(vehicle)

        def publish(first_seq: int, count: int) -> None:
            fields = encode_batch(_samples(first_seq, count))
            redis.xadd(stream, fields, maxlen=LIVE_STREAM_MAXLEN, approximate=True)  # type: ignore[arg-type]

        with serve_process(storage, tmp_path) as server:
            pid = server.process.pid
            login = httpx.post(
                f"{server.url}/api/v1/auth/login",
                json={"email": "slow@example.com", "password": PASSWORD},
            )
            cookie = login.cookies["obd2_session"]
            path = f"/api/v1/streams/vehicles/{vehicle}"

            async def run() -> tuple[int, int]:
                with (
                    stalled_sse(server.url, path, cookie),
                    stalled_sse(server.url, path, cookie),
                    stalled_sse(server.url, path, cookie),
                ):
                    async with stalled_socket(server.url, cookie, vehicle):
                        publish(0, 100)
                        await _caught_up(server.url, pid, cookie, path, publish)
                        before = _rss_kb(pid, "VmRSS")
                        for n in range(1, 201):
                            publish(n * 5_000, 5_000)
                        await _caught_up(server.url, pid, cookie, path, publish)
                        return before, _rss_kb(pid, "VmHWM")

            before, peak = asyncio.run(run())
            growth_mb = (peak - before) / 1024
            # 200 entries of 1.6 MB decoded each went by four stalled viewers (320 MB).
            assert growth_mb < 150, f"RSS {before / 1024:.0f} MB, peak {growth_mb:.0f} MB more"
            assert httpx.get(f"{server.url}/healthz").status_code == 200
        redis.close()


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


async def _caught_up(
    server_url: str, pid: int, cookie: str, path: str, publish: Callable[[int, int], None]
) -> None:
    """Returns once the process has passed everything published so far: it went idle, and a
    new viewer gets the next sample."""
    quiet = 0
    ticks = _cpu_ticks(pid)
    for _ in range(600):
        await asyncio.sleep(0.2)
        now = _cpu_ticks(pid)
        quiet = quiet + 1 if now - ticks <= 1 else 0
        ticks = now
        if quiet == 3:
            break
    marker = time.time_ns()
    async with (
        httpx.AsyncClient(
            base_url=server_url, cookies={"obd2_session": cookie}, timeout=60
        ) as client,
        client.stream("GET", path) as response,
    ):
        events = sse_events(response)
        await next_event(events, "comment")
        publish(marker, 1)
        while (await next_event(events, "sample", timeout=60)).json()["seq"] != marker:
            pass
