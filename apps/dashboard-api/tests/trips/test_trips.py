import csv
import io
import random
from typing import Any
from xml.etree import ElementTree as ET

import httpx
import pytest
from sqlalchemy import text

from obd2_dashboard.kit.db import session_scope
from obd2_dashboard.settings import Settings
from obd2_dashboard.trips.service import RECOMPUTED, recompute_vehicle
from tests.conftest import World
from tests.trips.helpers import T0, Car, Sample, drive, run_worker, stored_trips

GPX = "{http://www.topografix.com/GPX/1/1}"
MIN = 60_000
EXPORTED_UNITS = {"GPS_LAT": "°", "GPS_LON": "°", "RPM": "rpm", "SPEED": "km/h"}


@pytest.fixture(autouse=True)
def _the_test_runs_the_worker(settings: Settings) -> None:
    # No in-process worker: each test decides when batches are processed.
    settings.EMBEDDED_WORKER = False


async def _car(
    world: World, email: str = "driver@example.com"
) -> tuple[int, Car, httpx.AsyncClient]:
    user = await world.user(email)
    vehicle = await world.vehicle(user)
    _, token = await world.device(vehicle)
    return vehicle, Car(world.client, token), await world.login(email)


async def _trips(user: httpx.AsyncClient, vehicle: int, **params: Any) -> list[dict[str, Any]]:
    response = await user.get(f"/api/v1/vehicles/{vehicle}/trips", params=params)
    assert response.status_code == 200, response.text
    body: list[dict[str, Any]] = response.json()
    return body


def _day(start: int) -> list[Sample]:
    """Drive 10 min, 4-min fuel stop (engine off, silent), drive 10 min, park 1 h, drive 5 min."""
    fuel_stop = start + 600_000 + 240_000
    park = fuel_stop + 600_000 + 3_600_000
    return drive(start, 600) + drive(fuel_stop, 600, speed=90.0) + drive(park, 300, speed=30.0)


async def test_a_fuel_stop_joins_and_a_long_park_splits(world: World) -> None:
    vehicle, car, user = await _car(world)
    await car.upload(_day(T0))
    assert await run_worker(world.app) == 1
    trips = await _trips(user, vehicle)
    await user.aclose()
    assert len(trips) == 2
    newest, first = trips
    assert newest["start_ts"] > first["start_ts"]  # newest first
    assert first["start_ts"] == T0
    assert first["end_ts"] == T0 + 600_000 + 240_000 + 599_000
    assert first["duration_s"] == pytest.approx(1439.0)
    # 599 s at 60 km/h + 599 s at 90 km/h; the silent stop adds nothing.
    assert first["distance_km"] == pytest.approx((599 * 60 + 599 * 90) / 3600)
    assert first["max_speed_kmh"] == 90.0
    assert first["moving_s"] == pytest.approx(1198.0)
    assert newest["distance_km"] == pytest.approx(299 * 30 / 3600)
    assert newest["duration_s"] == pytest.approx(299.0)
    assert newest["avg_speed_kmh"] == pytest.approx(30.0)


async def test_the_join_gap_is_a_setting(settings: Settings, world: World) -> None:
    settings.TRIP_JOIN_GAP_S = 120  # the 4-minute fuel stop now splits
    vehicle, car, user = await _car(world)
    await car.upload(_day(T0))
    await run_worker(world.app)
    assert len(await _trips(user, vehicle)) == 3
    await user.aclose()


async def test_late_older_samples_recompute_without_duplicates(world: World) -> None:
    vehicle, car, user = await _car(world)
    day = _day(T0)
    middle = [s for s in day if T0 + 300_000 <= s[0] < T0 + 900_000]
    rest = [s for s in day if s not in middle]
    # The agent's spool sends the middle of the drive last: first two trips appear…
    await car.upload(rest)
    await run_worker(world.app)
    before = await _trips(user, vehicle)
    assert len(before) == 3
    # …then the older samples arrive and the first two merge into one.
    await car.upload(middle)
    await run_worker(world.app)
    after = await _trips(user, vehicle)
    await user.aclose()
    assert len(after) == 2
    assert after[1]["start_ts"] == T0
    assert after[1]["id"] in {t["id"] for t in before}  # an id survives the merge
    # Exactly what processing the whole day at once gives.
    other, car2, user2 = await _car(world, "twin@example.com")
    await car2.upload(day)
    await run_worker(world.app)
    once = await _trips(user2, other)
    await user2.aclose()
    strip = ("id",)
    assert [{k: v for k, v in t.items() if k not in strip} for t in after] == [
        {k: v for k, v in t.items() if k not in strip} for t in once
    ]


async def test_a_replayed_batch_changes_nothing(world: World) -> None:
    vehicle, car, user = await _car(world)
    batches = await car.upload(_day(T0))
    await run_worker(world.app)
    stored = await stored_trips(world.app)
    result = await car.replay(batches[0])
    assert result["accepted"] == 0
    assert await run_worker(world.app) == 0
    # The worker's at-least-once delivery: the same minutes processed again.
    minutes = {("RPM", ts - ts % MIN) for ts, _, _ in _day(T0)}
    async with session_scope(world.app.state.obd2.sessionmaker) as session:
        await recompute_vehicle(session, vehicle, minutes, 300_000)
    assert await stored_trips(world.app) == stored
    assert len(await _trips(user, vehicle)) == 2
    await user.aclose()


async def test_live_batches_extend_the_trip_as_one_pass_would(world: World) -> None:
    vehicle, car, user = await _car(world)
    day = _day(T0)
    appended = RECOMPUTED.labels("append")._value.get()
    for start in range(0, len(day), 240):  # two minutes of samples per batch, processed each time
        await car.upload(day[start : start + 240])
        await run_worker(world.app)
    assert RECOMPUTED.labels("append")._value.get() > appended  # the resumed path ran
    live = await _trips(user, vehicle)
    await user.aclose()
    other, car2, user2 = await _car(world, "twin@example.com")
    await car2.upload(day)
    await run_worker(world.app)
    once = await _trips(user2, other)
    await user2.aclose()
    assert [{k: v for k, v in t.items() if k != "id"} for t in live] == [
        {k: v for k, v in t.items() if k != "id"} for t in once
    ]


def _rich_drive(rng: random.Random) -> list[Sample]:
    """20 minutes of every trip PID at its own rate, with a 40 s silence (longer than readings
    count for) and a 3-minute stop with the engine off (shorter than the join gap)."""
    samples: list[Sample] = []
    stop = range(T0 + 11 * MIN, T0 + 14 * MIN)
    silence = range(T0 + 6 * MIN + 10_000, T0 + 6 * MIN + 50_000)
    for i in range(20 * 60):
        ts = T0 + i * 1000
        if ts in stop or ts in silence:
            continue
        speed = float(rng.choice([0, 0, 20, 48.5, 90, 131]))
        samples += [(ts, "RPM", 800.0 + rng.randint(0, 3000)), (ts, "SPEED", speed)]
        if i % 2 == 0:
            samples += [
                (ts + 300, "FUEL_RATE", rng.uniform(0.5, 9)),
                (ts, "MAF", rng.uniform(2, 40)),
            ]
        if i % 5 == 0:
            samples += [(ts, "COOLANT_TEMP", 80.0 + i / 60), (ts, "GPS_LAT", 52.0 + i * 1e-5)]
            samples += [(ts + 300, "GPS_LON", 4.5 + i * 1e-5)]
        if i % 30 == 0:
            samples.append((ts, "ODOMETER", 12_000.0 + i / 100))
    return samples


async def _trip_points(world: World, vehicle: int) -> list[tuple[Any, ...]]:
    async with world.app.state.obd2.sessionmaker() as session:
        result = await session.execute(
            text(
                "SELECT p.ts, p.lat, p.lon FROM trip_points p JOIN trips t ON t.id = p.trip_id "
                "WHERE t.vehicle_id = :v ORDER BY p.ts"
            ),
            {"v": vehicle},
        )
        return [tuple(row) for row in result]


async def test_late_samples_inside_a_long_trip_recount_their_minutes_as_one_pass_would(
    world: World,
) -> None:
    rng = random.Random(7)
    drive_ = _rich_drive(rng)
    late_window = range(T0 + 4 * MIN + 50_000, T0 + 4 * MIN + 58_000)  # just before a minute ends
    held = [
        s
        for s in drive_
        if s[0] in late_window or (s[1] == "GPS_LON" and s[0] == T0 + 9 * MIN + 300)
    ]
    late_batches = [
        held,
        # readings inside the silence and inside the engine-off stop (a minute with none before)
        [(T0 + 6 * MIN + 30_000, "SPEED", 55.0), (T0 + 12 * MIN + 5_000, "COOLANT_TEMP", 99.0)],
        # the same instant and PID as stored samples, another value; a GPS fix; fuel
        [
            (T0 + 15 * MIN, "SPEED", 61.0),
            (T0 + 15 * MIN, "RPM", 5.0),
            (T0 + 16 * MIN + 100, "GPS_LAT", 53.0),
            (T0 + 16 * MIN + 400, "GPS_LON", 5.0),
            (T0 + 17 * MIN + 59_999, "FUEL_RATE", 30.0),
            (T0 + 2 * MIN + 1, "MAF", 80.0),
            (T0 + 19 * MIN + 59_000, "ODOMETER", 12_013.0),
        ],
    ]
    early = [s for s in drive_ if s not in held]
    everything = early + [s for batch in late_batches for s in batch]

    vehicle, car, user = await _car(world)
    await car.upload(early)
    await run_worker(world.app)
    patched = RECOMPUTED.labels("patch")._value.get()
    full = RECOMPUTED.labels("full")._value.get()
    for batch in late_batches:  # each processed on its own, newest batch first
        await car.upload(batch[::-1])
        await run_worker(world.app)
    assert RECOMPUTED.labels("patch")._value.get() >= patched + len(late_batches)
    assert RECOMPUTED.labels("full")._value.get() == full
    # A replay of the late samples stores and changes nothing.
    assert (await car.replay(car.sent[-1][0:3]))["accepted"] == 0
    await run_worker(world.app)
    (trip,) = await _trips(user, vehicle)
    await user.aclose()

    # The reference: all the samples at once, summarised by one pass over the trip.
    other, twin, twin_user = await _car(world, "twin@example.com")
    await twin.upload(sorted(everything))
    await run_worker(world.app)
    (once,) = await _trips(twin_user, other)
    await twin_user.aclose()
    assert {k: v for k, v in trip.items() if k != "id"} == {
        k: v for k, v in once.items() if k != "id"
    }
    rows = {row[1]: row[2:] for row in await stored_trips(world.app)}
    assert rows[vehicle] == rows[other]  # every column, the segmenter state included
    points = await _trip_points(world, vehicle)
    assert points == await _trip_points(world, other)
    # One fix each 5 s but in the stop and the silence; the late latitude took a fix over.
    assert trip["track_points"] == len(points) == 240 - 36 - 8
    assert (T0 + 16 * MIN + 300, 53.0, 4.5 + 960 * 1e-5) in points
    assert trip["fuel_source"] == "FUEL_RATE"
    assert trip["distance_source"] == "odometer"


async def test_fuel_from_fuel_rate(world: World) -> None:
    vehicle, car, user = await _car(world)
    samples = drive(T0, 601) + [(T0 + i * 1000, "FUEL_RATE", 6.0) for i in range(601)]
    await car.upload(samples)
    await run_worker(world.app)
    (trip,) = await _trips(user, vehicle)
    await user.aclose()
    assert trip["fuel_source"] == "FUEL_RATE"
    assert trip["fuel_used_l"] == pytest.approx(1.0)
    assert trip["distance_km"] == pytest.approx(10.0)
    assert trip["economy_l_per_100km"] == pytest.approx(10.0)


async def test_fuel_from_maf_follows_the_vehicle_fuel_type(world: World) -> None:
    vehicle, car, user = await _car(world)
    samples = drive(T0, 1001) + [(T0 + i * 1000, "MAF", 10.0) for i in range(1001)]
    await car.upload(samples)
    await run_worker(world.app)
    (petrol,) = await _trips(user, vehicle)
    assert petrol["fuel_source"] == "MAF"
    assert petrol["fuel_used_l"] == pytest.approx(10_000 / 14.7 / 745)
    response = await user.patch(f"/api/v1/vehicles/{vehicle}", json={"fuel_type": "diesel"})
    assert response.status_code == 200, response.text
    assert response.json()["fuel_type"] == "diesel"
    (diesel,) = await _trips(user, vehicle)
    assert diesel["fuel_used_l"] == pytest.approx(10_000 / 14.5 / 832)
    bad = await user.patch(f"/api/v1/vehicles/{vehicle}", json={"fuel_type": "kerosene"})
    assert bad.status_code == 422
    await user.aclose()


async def test_detail_has_downsampled_charts(world: World) -> None:
    vehicle, car, user = await _car(world)
    await car.upload(drive(T0, 1800))
    await run_worker(world.app)
    (trip,) = await _trips(user, vehicle)
    response = await user.get(f"/api/v1/vehicles/{vehicle}/trips/{trip['id']}")
    await user.aclose()
    assert response.status_code == 200, response.text
    detail = response.json()
    assert detail["distance_km"] == trip["distance_km"]
    speed = detail["charts"]["series"]["SPEED"]
    rpm = detail["charts"]["series"]["RPM"]
    assert 100 < len(speed) <= 500
    assert len(rpm) == len(speed)
    assert speed[0] == [T0, 60.0]
    assert detail["charts"]["bucket_ms"] * len(speed) >= 1_799_000


async def test_gpx_is_a_valid_track_and_csv_has_its_header(world: World) -> None:
    vehicle, car, user = await _car(world)
    samples = drive(T0, 120)
    for i in range(0, 120, 5):
        samples += [(T0 + i * 1000, "GPS_LAT", 52.37 + i * 1e-4), (T0 + i * 1000, "GPS_LON", 4.89)]
    await car.upload(samples)
    await run_worker(world.app)
    (trip,) = await _trips(user, vehicle)
    assert trip["track_points"] == 24
    base = f"/api/v1/vehicles/{vehicle}/trips/{trip['id']}"
    gpx = await user.get(f"{base}.gpx")
    assert gpx.status_code == 200, gpx.text
    assert gpx.headers["content-type"].startswith("application/gpx+xml")
    root = ET.fromstring(gpx.content)
    assert root.tag == f"{GPX}gpx"
    assert root.attrib["version"] == "1.1"
    points = root.findall(f"{GPX}trk/{GPX}trkseg/{GPX}trkpt")
    assert len(points) == 24
    assert float(points[1].attrib["lat"]) == pytest.approx(52.3705)
    assert float(points[1].attrib["lon"]) == pytest.approx(4.89)
    time = points[0].find(f"{GPX}time")
    assert time is not None
    assert time.text == "2026-05-28T20:26:00.000Z"
    exported = await user.get(f"{base}.csv")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(exported.text)))
    # The columns are the PIDs the trip has samples of, each with its unit.
    header = rows[0]
    assert header[:2] == ["ts", "time"]
    assert set(header[2:]) == {f"{pid} ({unit})" for pid, unit in EXPORTED_UNITS.items()}
    cells = sum(1 for row in rows[1:] for cell in row[2:] if cell)
    assert cells == len(samples)
    assert int(rows[1][0]) == T0
    await user.aclose()


async def test_gpx_without_gps_is_404(world: World) -> None:
    vehicle, car, user = await _car(world)
    await car.upload(drive(T0, 30))
    await run_worker(world.app)
    (trip,) = await _trips(user, vehicle)
    response = await user.get(f"/api/v1/vehicles/{vehicle}/trips/{trip['id']}.gpx")
    await user.aclose()
    assert response.status_code == 404
    assert "no GPS track" in response.json()["detail"]


async def test_pagination_and_filters(world: World) -> None:
    vehicle, car, user = await _car(world)
    hour = 3_600_000
    samples: list[Sample] = []
    for n in range(7):
        samples += drive(T0 + n * hour, 60)
    await car.upload(samples)
    await run_worker(world.app)
    seen: list[int] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        response = await user.get(f"/api/v1/vehicles/{vehicle}/trips", params=params)
        assert response.status_code == 200
        pages += 1
        seen += [t["start_ts"] for t in response.json()]
        cursor = response.headers.get("X-Next-Cursor")
        if cursor is None:
            assert "Link" not in response.headers
            break
        assert 'rel="next"' in response.headers["Link"]
    assert pages == 3
    assert seen == [T0 + n * hour for n in reversed(range(7))]
    window = await _trips(user, vehicle, **{"from": T0 + 2 * hour, "to": T0 + 5 * hour})
    assert [t["start_ts"] for t in window] == [T0 + n * hour for n in (4, 3, 2)]
    for bad in ({"cursor": "nope"}, {"limit": 0}, {"limit": 501}, {"from": 10, "to": 10}):
        response = await user.get(f"/api/v1/vehicles/{vehicle}/trips", params=bad)
        assert response.status_code == 422, bad
    spec = (await user.get("/api/v1/openapi.json")).json()
    listing = spec["paths"]["/api/v1/vehicles/{vehicle_id}/trips"]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {"from", "to", "limit", "cursor"}
    assert "X-Next-Cursor" in listing["responses"]["200"]["headers"]
    await user.aclose()


async def test_another_users_vehicle_and_trips_are_404(world: World) -> None:
    vehicle, car, alice = await _car(world, "alice@example.com")
    await car.upload(drive(T0, 30))
    await run_worker(world.app)
    (trip,) = await _trips(alice, vehicle)
    await world.user("bob@example.com")
    bob = await world.login("bob@example.com")
    bobs_vehicle = await world.vehicle(await world.user("bob2@example.com"))
    base = f"/api/v1/vehicles/{vehicle}/trips"
    for path in (
        base,
        f"{base}/{trip['id']}",
        f"{base}/{trip['id']}.gpx",
        f"{base}/{trip['id']}.csv",
    ):
        response = await bob.get(path)
        assert response.status_code == 404, path
    # A trip id under a vehicle it does not belong to is not found either.
    response = await alice.get(f"/api/v1/vehicles/{vehicle}/trips/{trip['id'] + 1}")
    assert response.status_code == 404
    response = await bob.get(f"/api/v1/vehicles/{bobs_vehicle}/trips/{trip['id']}")
    assert response.status_code == 404
    anonymous = await world.client.get(base)
    assert anonymous.status_code == 401
    await alice.aclose()
    await bob.aclose()


async def test_deleting_the_vehicle_deletes_its_trips(world: World) -> None:
    vehicle, car, user = await _car(world)
    samples = [*drive(T0, 30), (T0, "GPS_LAT", 52.0), (T0, "GPS_LON", 4.0)]
    await car.upload(samples)
    await run_worker(world.app)
    assert len(await stored_trips(world.app)) == 1
    response = await user.delete(f"/api/v1/vehicles/{vehicle}")
    await user.aclose()
    assert response.status_code == 204
    assert await stored_trips(world.app) == []
