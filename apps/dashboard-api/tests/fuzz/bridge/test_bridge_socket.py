"""Frames the bridge socket must answer with an error frame, staying open and healthy."""

import asyncio
import json
import logging
import time
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection, connect

from tests.conftest import Served, World
from tests.fuzz.frames import BINARY, GENERATED, ODD_TEXT

Frame = str | bytes


@pytest.fixture
async def token(served: Served) -> str:
    transport = httpx.ASGITransport(app=served.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        world = World(served.app, c)
        user = await world.user("bridge@example.com")
        vehicle = await world.vehicle(user)
        _, token = await world.device(vehicle)
        return token


def _batch(batch_id: int) -> str:
    sample = {"seq": batch_id, "ts": int(time.time() * 1000), "pid": "RPM", "value": 900.0}
    return json.dumps({"type": "batch", "id": batch_id, "samples": [sample]})


async def _replies_to(ws: ClientConnection, frame: Frame, probe: int) -> list[dict[str, Any]]:
    """What the server answers to ``frame``, told apart from later frames by a batch ``probe``."""
    await ws.send(frame)
    await ws.send(_batch(probe))
    replies: list[dict[str, Any]] = []
    while True:
        reply: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if reply == {"type": "ack", "id": probe, "accepted": 1, "duplicates": 0}:
            return replies
        replies.append(reply)


async def _send_all(url: str, token: str, frames: list[Frame], first_probe: int) -> None:
    async with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        for n, frame in enumerate(frames):
            replies = await _replies_to(ws, frame, first_probe + n)
            # At most one answer, and an error if anything; a report frame gets none.
            assert len(replies) <= 1, (frame[:80], replies)
            for reply in replies:
                assert reply["type"] == "error", (frame[:80], reply)
                assert reply["status"] in {413, 422}, (frame[:80], reply)
                assert reply["detail"]


async def test_odd_frames_get_error_frames(
    served: Served, token: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    url = f"{served.ws_url}/api/v1/bridge/ws"
    limit = served.app.state.obd2.settings.INGEST_MAX_BODY_BYTES
    oversized = '{"type": "batch", "id": 1, "samples": [], "x": "' + "x" * limit + '"}'
    await _send_all(url, token, [*ODD_TEXT, *BINARY, "[" * 100_000 + "]" * 100_000], 1_000)
    async with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        replies = await _replies_to(ws, oversized, 2_000)
        assert [(r["type"], r["status"]) for r in replies] == [("error", 413)]
    async with httpx.AsyncClient(base_url=served.url) as http:
        assert (await http.get("/healthz")).status_code == 200
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(frames=st.lists(GENERATED, min_size=30, max_size=30))
async def test_generated_json_frames_never_break_the_socket(
    served: Served, token: str, frames: list[str]
) -> None:
    # Probes need seqs never used before, whichever example hypothesis replays.
    first_probe = time.time_ns() // 1000
    await _send_all(f"{served.ws_url}/api/v1/bridge/ws", token, list(frames), first_probe)
