import asyncio
import json
import time
from typing import Any

import httpx
from sqlalchemy import func, select

from obd2_dashboard.models import Device, IngestOutbox, Sample, Vehicle
from tests.conftest import World


def batch(
    start_seq: int, n: int, *, pid: str = "RPM", ts0: int | None = None
) -> dict[str, list[dict[str, Any]]]:
    ts0 = ts0 if ts0 is not None else int(time.time() * 1000) - 60_000
    return {
        "samples": [
            {"seq": start_seq + i, "ts": ts0 + i * 50, "pid": pid, "value": 800.0 + i}
            for i in range(n)
        ]
    }


async def _rows(world: World, device_id: int) -> list[tuple[int, float]]:
    async with world.app.state.obd2.sessionmaker() as session:
        result = await session.execute(
            select(Sample.seq, Sample.value)
            .where(Sample.device_id == device_id)
            .order_by(Sample.seq)
        )
        return [(int(r[0]), float(r[1])) for r in result]


async def _device(world: World) -> tuple[int, int, str]:
    user = await world.user("owner@example.com")
    vehicle = await world.vehicle(user)
    device_id, token = await world.device(vehicle)
    return vehicle, device_id, token


async def test_ingest_stores_once_and_reports_duplicates(
    world: World, client: httpx.AsyncClient
) -> None:
    vehicle_id, device_id, token = await _device(world)
    auth = {"Authorization": f"Bearer {token}"}
    first = await client.post("/api/v1/ingest", json=batch(0, 10), headers=auth)
    assert first.status_code == 200, first.text
    assert first.json() == {"accepted": 10, "duplicates": 0}
    again = await client.post("/api/v1/ingest", json=batch(5, 10), headers=auth)
    assert again.json() == {"accepted": 5, "duplicates": 5}
    rows = await _rows(world, device_id)
    assert [seq for seq, _ in rows] == list(range(15))
    async with world.app.state.obd2.sessionmaker() as session:
        device = await session.get(Device, device_id)
        vehicle = await session.get(Vehicle, vehicle_id)
        assert device is not None
        assert device.last_seen_at is not None
        assert vehicle is not None
        assert vehicle.last_seen_at is not None
        outbox = await session.scalar(select(func.count()).select_from(IngestOutbox))
    assert outbox is not None


async def test_concurrent_replays_store_each_sample_once(
    world: World, client: httpx.AsyncClient
) -> None:
    # Replays racing the first delivery: on Postgres the bulk path meets rows another
    # transaction has not committed yet, and must fall back rather than fail or double-store.
    _, device_id, token = await _device(world)
    auth = {"Authorization": f"Bearer {token}"}
    bodies = [batch(0, 50), batch(25, 50), batch(0, 50), batch(25, 50), batch(10, 50)] * 2
    answers = await asyncio.gather(
        *(client.post("/api/v1/ingest", json=b, headers=auth) for b in bodies)
    )
    assert [a.status_code for a in answers] == [200] * len(bodies)
    counts = [a.json() for a in answers]
    assert all(c["accepted"] + c["duplicates"] == 50 for c in counts)
    assert sum(c["accepted"] for c in counts) == 75
    assert [seq for seq, _ in await _rows(world, device_id)] == list(range(75))


async def test_duplicate_seq_inside_one_batch_is_stored_once(
    world: World, client: httpx.AsyncClient
) -> None:
    _, device_id, token = await _device(world)
    body = batch(7, 1)
    body["samples"] = body["samples"] * 3
    response = await client.post(
        "/api/v1/ingest", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.json() == {"accepted": 1, "duplicates": 2}
    assert len(await _rows(world, device_id)) == 1


async def test_ingest_refuses_missing_bad_and_revoked_tokens(
    world: World, client: httpx.AsyncClient
) -> None:
    _, device_id, token = await _device(world)
    assert (await client.post("/api/v1/ingest", json=batch(0, 1))).status_code == 401
    bad = await client.post(
        "/api/v1/ingest", json=batch(0, 1), headers={"Authorization": "Bearer obd2d_nope"}
    )
    assert bad.status_code == 401
    assert bad.json()["detail"]
    owner = await world.login("owner@example.com")
    revoked = await owner.post(f"/api/v1/devices/{device_id}/revoke")
    await owner.aclose()
    assert revoked.status_code == 200
    after = await client.post(
        "/api/v1/ingest", json=batch(0, 1), headers={"Authorization": f"Bearer {token}"}
    )
    assert after.status_code == 401
    assert await _rows(world, device_id) == []


async def test_values_are_stored_exactly(world: World, client: httpx.AsyncClient) -> None:
    _, device_id, token = await _device(world)
    values = [0.1, 1 / 3, -0.0, 5e-324, 1e12, -1e12, -123456789.125, 42.0]
    body = batch(0, len(values))
    for sample, value in zip(body["samples"], values, strict=True):
        sample["value"] = value
    response = await client.post(
        "/api/v1/ingest", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    assert [value for _, value in await _rows(world, device_id)] == values


async def test_ingest_body_is_documented(client: httpx.AsyncClient) -> None:
    document = (await client.get("/api/v1/openapi.json")).json()
    body = document["paths"]["/api/v1/ingest"]["post"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    assert body["required"] is True
    assert schema["properties"]["samples"]["items"]["required"] == ["seq", "ts", "pid", "value"]


async def test_invalid_batch_stores_nothing(world: World, client: httpx.AsyncClient) -> None:
    _, device_id, token = await _device(world)
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    good = batch(0, 3)["samples"]
    now = int(time.time() * 1000)
    bodies = [
        {"samples": [*good, {"seq": 9, "ts": now, "pid": "NOPE", "value": 1}]},
        {"samples": [*good, {"seq": 9, "ts": now + 3 * 86_400_000, "pid": "RPM", "value": 1}]},
        {"samples": [*good, {"seq": -1, "ts": now, "pid": "RPM", "value": 1}]},
        {"samples": [*good, {"seq": 9, "ts": now, "pid": "RPM", "value": "fast"}]},
        {"samples": [*good, {"seq": 9, "ts": now, "pid": "RPM", "value": 1, "extra": 1}]},
        {"samples": [*good, {"seq": 2**64, "ts": now, "pid": "RPM", "value": 1}]},
        {"samples": [*good, {"seq": 9, "ts": 5, "pid": "RPM", "value": 1}]},
        {"samples": []},
        {"rows": good},
    ]
    for body in bodies:
        response = await client.post("/api/v1/ingest", content=json.dumps(body), headers=auth)
        assert response.status_code == 422, (body, response.text)
        assert isinstance(response.json()["detail"], str)
    for raw in (
        b'{"samples": [{"seq": 1, "ts": 1800000000000, "pid": "RPM", "value": NaN}]}',
        b'{"samples": [{"seq": 1, "ts": 1800000000000, "pid": "RPM", "value": 1e999}]}',
        b"\xff\xfe not utf-8",
        b'{"samples": [',
    ):
        response = await client.post("/api/v1/ingest", content=raw, headers=auth)
        assert 400 <= response.status_code < 500, (raw, response.text)
    assert await _rows(world, device_id) == []


async def test_oversized_ingest_body_is_413(world: World, client: httpx.AsyncClient) -> None:
    _, device_id, token = await _device(world)
    limit = world.app.state.obd2.settings.INGEST_MAX_BODY_BYTES
    body = b'{"samples": [' + b" " * (limit + 10) + b"]}"
    response = await client.post(
        "/api/v1/ingest",
        content=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert "larger" in response.json()["detail"]
    assert await _rows(world, device_id) == []


async def test_values_the_storage_cannot_hold_are_refused(
    world: World, client: httpx.AsyncClient
) -> None:
    _, device_id, token = await _device(world)
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    good = json.dumps(batch(0, 3)["samples"])[1:-1]
    now = int(time.time() * 1000)
    # Spelled as raw JSON: NaN and 1e999 are what a careless encoder writes.
    for value in (
        "1e308",
        "-1e308",
        "NaN",
        "-Infinity",
        "1e999",
        "1000000000000.5",
        '"12"',
        "true",
    ):
        body = f'{{"samples": [{good}, {{"seq": 9, "ts": {now}, "pid": "RPM", "value": {value}}}]}}'
        response = await client.post("/api/v1/ingest", content=body, headers=auth)
        assert response.status_code == 422, (value, response.text)
        assert "samples.3.value" in response.json()["detail"], (value, response.text)
    assert await _rows(world, device_id) == []


async def test_a_seq_repeated_with_another_reading_is_refused(
    world: World, client: httpx.AsyncClient
) -> None:
    _, device_id, token = await _device(world)
    auth = {"Authorization": f"Bearer {token}"}
    for field, other in (("value", 12345.0), ("pid", "SPEED"), ("ts", 1_800_000_000_000)):
        body = batch(0, 3)
        body["samples"].append({**body["samples"][1], field: other})
        response = await client.post("/api/v1/ingest", json=body, headers=auth)
        assert response.status_code == 422, (field, response.text)
        assert "repeats the seq 1 of samples[1]" in response.json()["detail"]
    assert await _rows(world, device_id) == []


async def test_ingest_body_must_be_sent_as_json(world: World, client: httpx.AsyncClient) -> None:
    _, device_id, token = await _device(world)
    body = json.dumps(batch(0, 1))
    for content_type in (
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/jsonx",
        "application/json; charset=latin-1",
    ):
        headers = {"Authorization": f"Bearer {token}"}
        if content_type is not None:
            headers["Content-Type"] = content_type
        response = await client.post("/api/v1/ingest", content=body, headers=headers)
        assert response.status_code == 415, (content_type, response.text)
        assert "application/json" in response.json()["detail"]
    assert await _rows(world, device_id) == []
    for n, content_type in enumerate(("application/json", "Application/JSON; charset=UTF-8")):
        response = await client.post(
            "/api/v1/ingest",
            content=json.dumps(batch(n, 1)),
            headers={"Authorization": f"Bearer {token}", "Content-Type": content_type},
        )
        assert response.status_code == 200, (content_type, response.text)
    document = (await client.get("/api/v1/openapi.json")).json()
    assert "415" in document["paths"]["/api/v1/ingest"]["post"]["responses"]
