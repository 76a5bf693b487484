"""Frames the browser socket must answer with an error frame, staying open and healthy."""

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

from tests.conftest import Served
from tests.fuzz.frames import BINARY, GENERATED, ODD_TEXT
from tests.live.test_browser_socket import _world

Socket = tuple[str, int, str, int]


async def _reply(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
    return message


@pytest.fixture
async def socket_world(served: Served) -> Socket:
    return await _world(served)


async def _still_works(served: Served, ws: ClientConnection, vehicle: int, token: str) -> None:
    await ws.send(json.dumps({"type": "subscribe", "vehicle_id": vehicle}))
    assert (await _reply(ws))["type"] == "subscribed"
    sample = {"seq": time.time_ns() // 1000, "ts": int(time.time() * 1000), "pid": "RPM",
              "value": 1.0}  # fmt: skip
    async with httpx.AsyncClient(base_url=served.url) as http:
        response = await http.post(
            "/api/v1/ingest",
            json={"samples": [sample]},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200
        assert (await http.get("/healthz")).status_code == 200
    assert (await _reply(ws))["seq"] == sample["seq"]
    await ws.send(json.dumps({"type": "unsubscribe", "vehicle_id": vehicle}))
    assert (await _reply(ws))["type"] == "unsubscribed"


async def test_odd_frames_get_error_frames(
    served: Served, socket_world: Socket, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    cookie, vehicle, token, bobs = socket_world
    url = f"{served.ws_url}/api/v1/streams/ws"
    async with connect(url, additional_headers={"Cookie": f"obd2_session={cookie}"}) as ws:
        frames: list[str | bytes] = [*ODD_TEXT, *BINARY]
        for frame in frames:
            await ws.send(frame)
            reply = await _reply(ws)
            assert reply["type"] in {"error", "unsubscribed"}, (frame[:80], reply)
            if reply["type"] == "error":
                assert reply["detail"], frame[:80]
        # Another user's vehicle: "not found", as for one that does not exist.
        await ws.send(json.dumps({"type": "subscribe", "vehicle_id": bobs}))
        assert await _reply(ws) == {
            "type": "error", "vehicle_id": bobs, "detail": "vehicle not found"
        }  # fmt: skip
        await ws.send("x" * 4097)
        assert "larger than 4096" in (await _reply(ws))["detail"]
        await _still_works(served, ws, vehicle, token)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(frames=st.lists(GENERATED, min_size=30, max_size=30))
async def test_generated_json_frames_never_break_the_socket(
    served: Served, socket_world: Socket, frames: list[str]
) -> None:
    cookie, vehicle, token, _ = socket_world
    url = f"{served.ws_url}/api/v1/streams/ws"
    async with connect(url, additional_headers={"Cookie": f"obd2_session={cookie}"}) as ws:
        for frame in frames:
            await ws.send(frame)
            reply = await _reply(ws)
            assert reply["type"] in {"error", "unsubscribed", "subscribed"}, (frame, reply)
        await _still_works(served, ws, vehicle, token)
