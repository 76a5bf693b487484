"""What the trip map, the vehicle card's week and the downloads read: the track, the totals of
the trips in a range, the names of the files."""

import csv
import io
from typing import Any

import httpx
import pytest

from obd2_dashboard.settings import Settings
from tests.conftest import World
from tests.trips.helpers import T0, Car, Sample, drive, run_worker

HOUR = 3_600_000


@pytest.fixture(autouse=True)
def _the_test_runs_the_worker(settings: Settings) -> None:
    settings.EMBEDDED_WORKER = False


async def _car(
    world: World, email: str = "driver@example.com"
) -> tuple[int, Car, httpx.AsyncClient]:
    user = await world.user(email)
    vehicle = await world.vehicle(user)
    _, token = await world.device(vehicle)
    return vehicle, Car(world.client, token), await world.login(email)


async def _trips(user: httpx.AsyncClient, vehicle: int) -> list[dict[str, Any]]:
    response = await user.get(f"/api/v1/vehicles/{vehicle}/trips")
    assert response.status_code == 200, response.text
    body: list[dict[str, Any]] = response.json()
    return body


def _gps(start: int, seconds: int, every: int = 5) -> list[Sample]:
    out: list[Sample] = []
    for i in range(0, seconds, every):
        ts = start + i * 1000
        out += [(ts, "GPS_LAT", 48.2 + i * 1e-4), (ts, "GPS_LON", 11.6 + i * 2e-4)]
    return out


async def test_the_track_is_the_trips_gps_fixes_in_time_order(world: World) -> None:
    vehicle, car, user = await _car(world)
    await car.upload(drive(T0, 120) + _gps(T0, 120))
    await run_worker(world.app)
    (trip,) = await _trips(user, vehicle)
    response = await user.get(f"/api/v1/vehicles/{vehicle}/trips/{trip['id']}/track")
    assert response.status_code == 200, response.text
    points = response.json()["points"]
    assert len(points) == trip["track_points"] == 24
    assert points[0] == [T0, pytest.approx(48.2), pytest.approx(11.6)]
    assert points[-1][1:] == [pytest.approx(48.2 + 115e-4), pytest.approx(11.6 + 230e-4)]
    assert [p[0] for p in points] == sorted(p[0] for p in points)
    await user.aclose()


async def test_a_trip_without_gps_has_an_empty_track(world: World) -> None:
    vehicle, car, user = await _car(world)
    await car.upload(drive(T0, 30))
    await run_worker(world.app)
    (trip,) = await _trips(user, vehicle)
    response = await user.get(f"/api/v1/vehicles/{vehicle}/trips/{trip['id']}/track")
    await user.aclose()
    assert response.status_code == 200
    assert response.json() == {"points": []}


async def test_a_long_track_is_thinned_keeping_both_ends(world: World) -> None:
    vehicle, car, user = await _car(world)
    # A fix every second for 50 minutes: 3000 fixes.
    await car.upload(drive(T0, 3000) + _gps(T0, 3000, every=1))
    await run_worker(world.app)
    (trip,) = await _trips(user, vehicle)
    assert trip["track_points"] == 3000
    points = (await user.get(f"/api/v1/vehicles/{vehicle}/trips/{trip['id']}/track")).json()[
        "points"
    ]
    await user.aclose()
    assert len(points) == 2000
    assert points[0][0] == T0
    assert points[-1][0] == T0 + 2999 * 1000


async def test_totals_add_up_the_trips_that_started_in_the_range(world: World) -> None:
    vehicle, car, user = await _car(world)
    fuel = [(T0 + i * 1000, "FUEL_RATE", 6.0) for i in range(601)]
    # Three drives an hour apart; the last one starts after the range asked for.
    await car.upload(
        drive(T0, 601) + fuel + drive(T0 + HOUR, 301, speed=30.0) + drive(T0 + 2 * HOUR, 60)
    )
    await run_worker(world.app)
    assert len(await _trips(user, vehicle)) == 3
    path = f"/api/v1/vehicles/{vehicle}/trips/totals"
    response = await user.get(path, params={"from": T0, "to": T0 + 2 * HOUR})
    assert response.status_code == 200, response.text
    totals = response.json()
    assert totals["from_ts"] == T0
    assert totals["to_ts"] == T0 + 2 * HOUR
    assert totals["trips"] == 2
    assert totals["distance_km"] == pytest.approx(10.0 + 2.5)
    assert totals["driving_s"] == pytest.approx(600 + 300)
    # Only the first drive's car told its fuel.
    assert totals["fuel_used_l"] == pytest.approx(1.0)
    empty = (await user.get(path, params={"from": T0 - HOUR, "to": T0})).json()
    assert (empty["trips"], empty["distance_km"], empty["fuel_used_l"]) == (0, 0, None)
    backwards = await user.get(path, params={"from": T0, "to": T0})
    assert backwards.status_code == 422
    too_long = await user.get(path, params={"from": 0, "to": T0})
    assert too_long.status_code == 422
    await user.aclose()


async def test_totals_and_track_of_another_users_vehicle_are_404(world: World) -> None:
    vehicle, car, alice = await _car(world, "alice@example.com")
    await car.upload(drive(T0, 30))
    await run_worker(world.app)
    (trip,) = await _trips(alice, vehicle)
    await world.user("bob@example.com")
    bob = await world.login("bob@example.com")
    base = f"/api/v1/vehicles/{vehicle}/trips"
    totals = await bob.get(f"{base}/totals", params={"from": T0, "to": T0 + HOUR})
    track = await bob.get(f"{base}/{trip['id']}/track")
    anonymous = await world.client.get(f"{base}/{trip['id']}/track")
    await alice.aclose()
    await bob.aclose()
    assert (totals.status_code, track.status_code, anonymous.status_code) == (404, 404, 401)


async def test_downloads_are_named_after_the_vehicle_and_the_day(world: World) -> None:
    user = await world.user("driver@example.com")
    vehicle = await world.vehicle(user)
    _, token = await world.device(vehicle)
    car = Car(world.client, token)
    client = await world.login("driver@example.com")
    renamed = await client.patch(f"/api/v1/vehicles/{vehicle}", json={"name": "Demo Car (Grüne)"})
    assert renamed.status_code == 200, renamed.text
    await car.upload(drive(T0, 60) + _gps(T0, 60))
    await run_worker(world.app)
    (trip,) = await _trips(client, vehicle)
    day = "2026-05-28"  # T0's UTC day
    history = await client.get(
        f"/api/v1/vehicles/{vehicle}/samples.csv",
        params={"pid": "RPM,SPEED", "from": T0, "to": T0 + 60_000},
    )
    csv_file = await client.get(f"/api/v1/vehicles/{vehicle}/trips/{trip['id']}.csv")
    gpx_file = await client.get(f"/api/v1/vehicles/{vehicle}/trips/{trip['id']}.gpx")
    await client.aclose()
    disposition = [r.headers["content-disposition"] for r in (history, csv_file, gpx_file)]
    assert disposition == [
        f'attachment; filename="demo-car-grune-{day}-history.csv"',
        f'attachment; filename="demo-car-grune-{day}-trip-{trip["id"]}.csv"',
        f'attachment; filename="demo-car-grune-{day}-trip-{trip["id"]}.gpx"',
    ]


async def test_the_long_csv_has_a_row_per_sample_beside_the_wide_one(world: World) -> None:
    vehicle, car, user = await _car(world)
    await car.upload([*drive(T0, 10), (T0 + 500, "COOLANT_TEMP", 90.0)])
    await run_worker(world.app)
    (trip,) = await _trips(user, vehicle)
    history = f"/api/v1/vehicles/{vehicle}/samples.csv"
    query: dict[str, str | int] = {"pid": "RPM,SPEED,COOLANT_TEMP", "from": T0, "to": T0 + 60_000}
    wide = await user.get(history, params=query)
    long = await user.get(history, params={**query, "layout": "long", "units": "imperial_us"})
    trip_long = await user.get(
        f"/api/v1/vehicles/{vehicle}/trips/{trip['id']}.csv", params={"layout": "long"}
    )
    bad = await user.get(history, params={**query, "layout": "tall"})
    await user.aclose()
    wide_rows = list(csv.reader(io.StringIO(wide.text)))
    assert wide_rows[0] == ["ts", "time", "COOLANT_TEMP (°C)", "RPM (rpm)", "SPEED (km/h)"]
    assert len(wide_rows) == 1 + 11  # ten instants of RPM and SPEED, one of COOLANT_TEMP
    rows = list(csv.reader(io.StringIO(long.text)))
    assert rows[0] == ["ts", "time", "pid", "value", "unit"]
    assert len(rows) == 1 + 21
    assert rows[1] == [str(T0), "2026-05-28T20:26:00.000+00:00", "RPM", "2000.0", "rpm"]
    assert rows[2][2:] == ["SPEED", repr(60.0 / 1.609344), "mph"]
    assert [r[2:] for r in rows if r[2] == "COOLANT_TEMP"] == [["COOLANT_TEMP", "194.0", "°F"]]
    assert "-history-long.csv" in long.headers["content-disposition"]
    trip_rows = list(csv.reader(io.StringIO(trip_long.text)))
    assert trip_rows[0] == ["ts", "time", "pid", "value", "unit"]
    assert len(trip_rows) == 1 + 21
    assert f"-trip-{trip['id']}-long.csv" in trip_long.headers["content-disposition"]
    assert bad.status_code == 422
