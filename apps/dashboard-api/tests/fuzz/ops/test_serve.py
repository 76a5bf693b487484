"""`obd2-dashboard serve` refuses WebSocket messages bigger than the largest upload from their
frame header: close code 1009, nothing read into memory, the server unharmed."""

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from obd2_dashboard.auth.service import create_user
from obd2_dashboard.devices.service import create_device_for
from obd2_dashboard.models import Vehicle
from tests.conftest import PASSWORD
from tests.serve_process import ServeProcess, fresh_storage, serve_process

LIMIT = 64 * 1024  # INGEST_MAX_BODY_BYTES for this server


@dataclass(frozen=True, slots=True)
class Site:
    server: ServeProcess
    token: str
    cookie: str

    @property
    def ws_url(self) -> str:
        return "ws" + self.server.url.removeprefix("http")


async def _seed(session: AsyncSession) -> str:
    user = await create_user(session, "big@example.com", PASSWORD)
    vehicle = Vehicle(owner_id=user.id, name="Car")
    session.add(vehicle)
    await session.flush()
    return (await create_device_for(session, vehicle, "pi")).token


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp: Path = tmp_path_factory.mktemp("frames")
    with fresh_storage("sqlite", tmp) as storage:
        token = storage.run(_seed)
        with serve_process(storage, tmp, INGEST_MAX_BODY_BYTES=str(LIMIT)) as server:
            login = httpx.post(
                f"{server.url}/api/v1/auth/login",
                json={"email": "big@example.com", "password": PASSWORD},
            )
            yield Site(server, token, login.cookies["obd2_session"])
            log = server.stop()
    assert '"level": "error"' not in log, log[-3000:]


def _batch(batch_id: int) -> str:
    sample = {"seq": batch_id, "ts": int(time.time() * 1000), "pid": "RPM", "value": 1.0}
    return json.dumps({"type": "batch", "id": batch_id, "samples": [sample]})


async def _closed_with(url: str, headers: dict[str, str], frame: str | bytes) -> int | None:
    async with connect(url, additional_headers=headers, max_size=None) as ws:
        await ws.send(frame)
        try:
            while True:
                await asyncio.wait_for(ws.recv(), 10)
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None


async def test_messages_over_the_upload_limit_close_the_socket_with_1009(site: Site) -> None:
    bridge = (f"{site.ws_url}/api/v1/bridge/ws", {"Authorization": f"Bearer {site.token}"})
    browser = (f"{site.ws_url}/api/v1/streams/ws", {"Cookie": f"obd2_session={site.cookie}"})
    for url, headers in (bridge, browser):
        for frame in ("x" * (LIMIT + 1), b"\x00" * (LIMIT + 1), "x" * (8 * 1024 * 1024)):
            assert await _closed_with(url, headers, frame) == 1009, (url, len(frame))
    # Up to the limit the bridge still takes batches, on a new socket, and the server answers.
    async with connect(bridge[0], additional_headers=bridge[1]) as ws:
        await ws.send(_batch(1))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "ack"
    assert httpx.get(f"{site.server.url}/healthz").status_code == 200
