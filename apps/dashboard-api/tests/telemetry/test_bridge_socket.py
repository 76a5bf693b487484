import json
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from obd2_dashboard.devices.service import device_status
from obd2_dashboard.models import Device, Sample
from tests.conftest import Served, World


async def _device(served: Served) -> tuple[int, str]:
    transport = httpx.ASGITransport(app=served.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        world = World(served.app, c)
        user = await world.user("bridge@example.com")
        vehicle = await world.vehicle(user)
        return await world.device(vehicle)


def _batch(batch_id: int, seqs: range) -> str:
    now = int(time.time() * 1000)
    samples = [{"seq": s, "ts": now + s, "pid": "RPM", "value": 900.0} for s in seqs]
    return json.dumps({"type": "batch", "id": batch_id, "samples": samples})


async def _stored(served: Served, device_id: int) -> int:
    async with served.app.state.obd2.sessionmaker() as session:
        count = await session.scalar(
            select(func.count()).select_from(Sample).where(Sample.device_id == device_id)
        )
        return int(count or 0)


async def test_bridge_socket_acks_durable_batches(served: Served) -> None:
    device_id, token = await _device(served)
    url = f"{served.ws_url}/api/v1/bridge/ws"
    async with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        await ws.send(_batch(1, range(0, 50)))
        ack: dict[str, Any] = json.loads(await ws.recv())
        assert ack == {"type": "ack", "id": 1, "accepted": 50, "duplicates": 0}
        assert await _stored(served, device_id) == 50
        await ws.send(_batch(2, range(25, 75)))
        assert json.loads(await ws.recv()) == {
            "type": "ack",
            "id": 2,
            "accepted": 25,
            "duplicates": 25,
        }
        await ws.send(json.dumps({"type": "batch", "id": 3, "samples": [{"seq": 1}]}))
        error = json.loads(await ws.recv())
        assert (error["type"], error["id"], error["status"]) == ("error", 3, 422)
        await ws.send("{not json")
        assert json.loads(await ws.recv())["status"] == 422
        await ws.send(json.dumps({"type": "status", "agent_version": "1.0"}))
        assert "invalid status" in json.loads(await ws.recv())["detail"]
        status = {
            "type": "status",
            "ts": int(time.time() * 1000),
            "agent_version": "9.9.9",
            "adapter_state": "connected",
            "spool_backlog": 12,
            "sample_rate": 55.5,
        }
        await ws.send(json.dumps(status))
        await ws.send(_batch(4, range(75, 76)))
        assert json.loads(await ws.recv())["id"] == 4
    assert await _stored(served, device_id) == 76
    async with served.app.state.obd2.sessionmaker() as session:
        device = await session.get(Device, device_id)
    assert device is not None
    assert device.agent_version == "9.9.9"
    kept = await device_status(served.app.state.obd2.broker, device_id)
    assert kept is not None
    assert kept["spool_backlog"] == 12


async def test_bridge_socket_refuses_bad_tokens(served: Served) -> None:
    await _device(served)
    url = f"{served.ws_url}/api/v1/bridge/ws"
    for headers in ({}, {"Authorization": "Bearer obd2d_wrong"}, {"Authorization": "Basic x"}):
        with pytest.raises((InvalidStatus, ConnectionClosed)):
            async with connect(url, additional_headers=headers) as ws:
                await ws.recv()
