import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from obd2_dashboard.devices.service import device_report_key, device_status
from obd2_dashboard.models import Device, DeviceCommand, Sample, VehicleDtc
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


async def _errors_then_ack(
    ws: ClientConnection, frame: str | bytes, probe: int
) -> list[dict[str, Any]]:
    """The frames the server answers ``frame`` with, up to the ack of a batch sent after it
    (commands the server pushes meanwhile are not answers)."""
    await ws.send(frame)
    await ws.send(_batch(probe, range(probe, probe + 1)))
    replies: list[dict[str, Any]] = []
    while True:
        reply: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if reply == {"type": "ack", "id": probe, "accepted": 1, "duplicates": 0}:
            return replies
        if reply["type"] != "clear_dtcs":
            replies.append(reply)


def _samples_frame(batch_id: int, value: str) -> str:
    """A batch whose last sample's value is ``value``, spelled as raw JSON."""
    now = int(time.time() * 1000)
    good = json.dumps({"seq": 10_000 + batch_id, "ts": now, "pid": "RPM", "value": 900.0})
    bad = f'{{"seq": 20000{batch_id}, "ts": {now}, "pid": "RPM", "value": {value}}}'
    return f'{{"type": "batch", "id": {batch_id}, "samples": [{good}, {bad}]}}'


async def test_values_the_storage_cannot_hold_are_refused_on_the_socket(served: Served) -> None:
    device_id, token = await _device(served)
    url = f"{served.ws_url}/api/v1/bridge/ws"
    refused = ["1e308", "-1e308", "NaN", "Infinity", "1e999", "1000000000001", '"12"', "true"]
    async with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        for n, value in enumerate(refused, start=1):
            replies = await _errors_then_ack(ws, _samples_frame(n, value), 100 + n)
            assert [(r["type"], r["id"], r["status"]) for r in replies] == [("error", n, 422)], (
                value,
                replies,
            )
            assert "samples.1.value" in replies[0]["detail"], replies
        now = int(time.time() * 1000)
        twice = [
            {"seq": 7, "ts": now, "pid": "RPM", "value": 1.0},
            {"seq": 7, "ts": now, "pid": "RPM", "value": 2.0},
        ]
        conflict = json.dumps({"type": "batch", "id": 50, "samples": twice})
        replies = await _errors_then_ack(ws, conflict, 150)
        assert [(r["type"], r["id"], r["status"]) for r in replies] == [("error", 50, 422)]
        assert "seq 7" in replies[0]["detail"]
    # Only the probes: nothing of a refused batch, not even its good sample.
    assert await _stored(served, device_id) == len(refused) + 1


async def test_unreadable_frames_are_answered_by_kind_and_the_socket_goes_on(
    served: Served,
) -> None:
    _, token = await _device(served)
    limit = served.app.state.obd2.settings.INGEST_MAX_BODY_BYTES
    # (frame, status): a frame over the size limit is a 413 whatever it holds; any other
    # frame the socket cannot read as JSON text is a 422.
    unreadable: list[tuple[str | bytes, int]] = [
        ('{"type": "batch", "id": 1, "samples": [], "x": "' + "x" * limit + '"}', 413),
        (" " * (limit + 1), 413),
        (b'{"type": "batch", "id": 1, "samples": []}', 422),
        ("{not json", 422),
        ("[" * 100_000 + "]" * 100_000, 422),
    ]
    url = f"{served.ws_url}/api/v1/bridge/ws"
    async with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        for n, (frame, status_code) in enumerate(unreadable):
            replies = await _errors_then_ack(ws, frame, 500 + n)
            assert [(r["type"], r["id"], r["status"]) for r in replies] == [
                ("error", None, status_code)
            ], (n, replies)
            assert replies[0]["detail"], replies


async def _queued_command(served: Served, device_id: int) -> int:
    async with served.app.state.obd2.sessionmaker() as session:
        device = await session.get(Device, device_id)
        assert device is not None
        command = DeviceCommand(
            device_id=device_id, vehicle_id=device.vehicle_id, kind="clear_dtcs"
        )
        session.add(command)
        await session.commit()
        return command.id


async def test_reports_over_a_limit_are_refused_whole_and_the_socket_goes_on(
    served: Served,
) -> None:
    device_id, token = await _device(served)
    command_id = await _queued_command(served, device_id)
    now = int(time.time() * 1000)
    status = {
        "type": "status",
        "ts": now,
        "agent_version": "1.0",
        "adapter_state": "connected",
        "spool_backlog": 0,
        "sample_rate": 1.0,
    }
    code = {"code": "P0301", "description": "Cylinder 1 misfire"}
    dtcs = {"type": "dtcs", "ts": now, "stored": [code], "pending": [], "permanent": []}
    result = {"type": "command_result", "id": command_id, "command": "clear_dtcs", "ok": True}
    # (frame, status, the field its error names)
    over: list[tuple[dict[str, Any], int, str]] = [
        ({**status, "agent_version": "v" * 100}, 422, "agent_version"),
        ({**status, "adapter_detail": "x" * 501}, 422, "adapter_detail"),
        ({**status, "adapter_detail": "x" * 1_500_000}, 413, "adapter_detail"),
        ({**status, "protocol": "p" * 65}, 422, "protocol"),
        ({**status, "vin": "V" * 33}, 422, "vin"),
        ({**status, "agent_version": "1.0\u0000"}, 422, "agent_version"),
        ({**status, "spool_backlog": 2**63}, 422, "spool_backlog"),
        ({**status, "battery_voltage": 1e308}, 422, "battery_voltage"),
        (
            {**dtcs, "freeze_dtc": "P0301", "freeze_frame": {f"K{i}": 1.0 for i in range(20_000)}},
            413,
            "freeze_frame",
        ),
        ({**dtcs, "freeze_frame": {f"K{i}": 1.0 for i in range(200)}}, 422, "freeze_frame"),
        ({**dtcs, "freeze_frame": {"NOT_A_PID": 1.0}}, 422, "freeze_frame"),
        ({**dtcs, "freeze_frame": {"RPM": 1e308}}, 422, "freeze_frame"),
        ({**dtcs, "freeze_dtc": "P0301" * 20}, 422, "freeze_dtc"),
        ({**dtcs, "stored": [code] * 129}, 422, "stored"),
        ({**dtcs, "pending": [{**code, "description": "d" * 201}]}, 422, "pending"),
        ({**result, "detail": "e" * 501}, 422, "detail"),
        ({**result, "id": 2**70}, 422, "id"),
    ]
    url = f"{served.ws_url}/api/v1/bridge/ws"
    async with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        for n, (frame, status_code, field) in enumerate(over):
            replies = await _errors_then_ack(ws, json.dumps(frame), 1_000 + n)
            assert [(r["type"], r["status"]) for r in replies] == [("error", status_code)], (
                field,
                replies,
            )
            assert f"invalid {frame['type']}: {field}" in replies[0]["detail"], replies
    assert await _stored(served, device_id) == len(over)
    async with served.app.state.obd2.sessionmaker() as session:
        device = await session.get(Device, device_id)
        command = await session.get(DeviceCommand, command_id)
        spells = await session.scalar(select(func.count()).select_from(VehicleDtc))
    assert device is not None
    assert device.agent_version is None
    assert command is not None
    assert command.completed_at is None
    assert spells == 0
    broker = served.app.state.obd2.broker
    assert await device_status(broker, device_id) is None
    for kind in ("dtcs", "command_result"):
        assert await broker.get(device_report_key(kind, device_id)) is None
