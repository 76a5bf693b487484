"""The demo car's month of history, stored through the ingest path: what the API then shows."""

import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from obd2_dashboard.ops.demo_history import DEMO_SEED, HISTORY_DEVICE, seed_history
from obd2_protocol import demo_car
from obd2_testkit.network import LoopbackOnly, loopback_only
from tests.alerts.helpers import PUBLIC_ADDRESS
from tests.conftest import World

DAY_MS = 86_400_000


@pytest.fixture(autouse=True)
def network(monkeypatch: pytest.MonkeyPatch) -> LoopbackOnly:
    return loopback_only(monkeypatch)


async def _owner(world: World) -> tuple[int, httpx.AsyncClient]:
    user = await world.user("demo@example.com")
    vehicle = await world.vehicle(user, "Demo car")
    return vehicle, await world.login("demo@example.com")


async def _trips(client: httpx.AsyncClient, vehicle: int, start: int, end: int) -> list[Any]:
    response = await client.get(
        f"/api/v1/vehicles/{vehicle}/trips", params={"from": start, "to": end, "limit": 500}
    )
    assert response.status_code == 200, response.text
    assert "X-Next-Cursor" not in response.headers
    trips: list[Any] = response.json()
    return trips


async def _count(world: World, sql: str) -> int:
    async with world.app.state.obd2.sessionmaker() as session:
        return int((await session.execute(text(sql))).scalar_one())


async def test_a_month_of_drives_shows_as_trips_history_and_trouble_codes(
    world: World, network: LoopbackOnly
) -> None:
    network.names["hooks.example.com"] = [PUBLIC_ADDRESS]  # looked up, never connected to
    vehicle, owner = await _owner(world)
    # Rules the month would set off if it were live: it must not.
    for rule in (
        {"kind": "threshold", "pid": "SPEED", "op": "above", "threshold": 100, "duration_s": 5},
        {"kind": "dtc"},
    ):
        response = await owner.post(
            f"/api/v1/vehicles/{vehicle}/alert-rules",
            json={"name": "rule", "webhook_url": "https://hooks.example.com/x", **rule},
        )
        assert response.status_code == 201, response.text
    now = int(time.time() * 1000)
    start = now - 30 * DAY_MS

    report = await seed_history(world.app.state.obd2.sessionmaker, vehicle, now_ms=now, tz=UTC)
    assert report.drives >= 60
    assert report.stored == report.samples > 100_000
    assert report.duplicates == report.skipped_drives == 0

    trips = await _trips(owner, vehicle, start, now)
    assert len(trips) == report.drives
    per_day = Counter(datetime.fromtimestamp(t["start_ts"] / 1000, UTC).date() for t in trips)
    assert len(per_day) >= 25
    assert sum(1 for n in per_day.values() if n >= 2) >= 20  # several a day on most days
    for trip in trips:
        assert trip["finished"] is True
        assert trip["distance_km"] > 2
        assert trip["track_points"] > 50
        assert trip["fuel_source"] == "FUEL_RATE"
        assert 4 < trip["economy_l_per_100km"] < 13
        assert trip["max_speed_kmh"] <= 130
    gpx = await owner.get(f"/api/v1/vehicles/{vehicle}/trips/{trips[0]['id']}.gpx")
    assert gpx.status_code == 200
    assert gpx.text.count("<trkpt") == trips[0]["track_points"]

    for pid in ("SPEED", "FUEL_RATE", "COOLANT_TEMP", "ELM_VOLTAGE"):
        history = (
            await owner.get(
                f"/api/v1/vehicles/{vehicle}/samples",
                params={"pid": pid, "from": start, "to": now},
            )
        ).json()
        assert history["source"] == "rollup"
        days = {datetime.fromtimestamp(ts / 1000, UTC).date() for ts, _ in history["points"]}
        assert len(days) >= 25, pid

    dtcs = (await owner.get(f"/api/v1/vehicles/{vehicle}/dtcs")).json()
    by_kind = {d["kind"]: d for d in dtcs}
    assert set(by_kind) == {"pending", "stored"}
    assert by_kind["pending"]["code"] == by_kind["stored"]["code"] == demo_car.DTC_CODE
    # Pending on one drive, gone when the next drive confirmed it, and stored since.
    assert by_kind["pending"]["clear_reason"] == "gone"
    assert by_kind["pending"]["cleared_at"] == by_kind["stored"]["first_seen"]
    assert by_kind["stored"]["cleared_at"] is None
    assert by_kind["stored"]["freeze_frame"]["values"]["SPEED"] >= 40
    assert now - 6 * DAY_MS < by_kind["pending"]["first_seen"] < now

    # Nobody was told: no alert, no delivery; the worker's work is done.
    assert (await owner.get(f"/api/v1/vehicles/{vehicle}/alerts")).json() == []
    assert await _count(world, "SELECT count(*) FROM alert_deliveries") == 0
    assert await _count(world, "SELECT count(*) FROM ingest_outbox") == 0
    devices = (await owner.get(f"/api/v1/vehicles/{vehicle}/devices")).json()
    (history_device,) = devices
    assert history_device["name"] == HISTORY_DEVICE
    assert history_device["revoked_at"] is not None
    assert history_device["last_seen_at"] is None  # past data: not heard from now


async def test_seeding_again_stores_nothing_twice(world: World) -> None:
    vehicle, owner = await _owner(world)
    now = int(time.time() * 1000)
    yesterday = now - DAY_MS
    maker = world.app.state.obd2.sessionmaker
    first = await seed_history(maker, vehicle, now_ms=yesterday, days=4, tz=UTC)
    assert first.stored == first.samples > 0
    trips = await _trips(owner, vehicle, yesterday - 4 * DAY_MS, yesterday)
    dtcs = (await owner.get(f"/api/v1/vehicles/{vehicle}/dtcs")).json()
    assert dtcs

    # A day later: the three days seeded before again, and the day since.
    again = await seed_history(maker, vehicle, now_ms=now, days=4, tz=UTC)
    assert again.duplicates > 0
    assert again.stored < again.samples
    assert await _count(world, "SELECT count(*) FROM samples") == first.stored + again.stored
    assert await _trips(owner, vehicle, yesterday - 4 * DAY_MS, yesterday) == trips
    assert len(await _trips(owner, vehicle, yesterday, now)) == again.drives - sum(
        1 for t in trips if t["start_ts"] >= now - 4 * DAY_MS
    )
    # The code's story was told once.
    assert (await owner.get(f"/api/v1/vehicles/{vehicle}/dtcs")).json() == dtcs
    devices = (await owner.get(f"/api/v1/vehicles/{vehicle}/devices")).json()
    assert [d["name"] for d in devices] == [HISTORY_DEVICE]


async def test_a_drive_over_another_devices_samples_is_left_out(world: World) -> None:
    vehicle, owner = await _owner(world)
    _, token = await world.device(vehicle, "Demo agent")
    now = int(time.time() * 1000)
    planned = list(demo_car.history(DEMO_SEED, now - 2 * DAY_MS, now, tz=UTC))
    busy = planned[1].readings[0].ts_ms
    # The live agent of an earlier run, driving at that moment.
    response = await world.client.post(
        "/api/v1/ingest",
        json={"samples": [{"seq": 1, "ts": busy + 60_000, "pid": "RPM", "value": 2000.0}]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200
    report = await seed_history(
        world.app.state.obd2.sessionmaker, vehicle, now_ms=now, days=2, tz=UTC
    )
    assert report.skipped_drives == 1
    assert report.drives == len(planned) - 1
    starts = {t["start_ts"] for t in await _trips(owner, vehicle, now - 2 * DAY_MS, now)}
    assert planned[0].readings[0].ts_ms in starts
    assert busy not in starts
