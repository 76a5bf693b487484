"""A real Torque Pro drive (fixtures/econpy-torque), replayed upload by upload."""

import math

import pytest
from sqlalchemy import text

from obd2_dashboard.pids.definitions import TORQUE_SESSION
from obd2_dashboard.torque.keys import pid_name
from tests.conftest import World
from tests.torque.uploads import real_uploads, send_all, value_fields
from tests.trips.helpers import run_worker


def _storable(raw: str) -> bool:
    try:
        value = float(raw)
    except ValueError:
        return False
    return math.isfinite(value) and abs(value) <= 1e12


async def test_a_real_drive_keeps_every_value_and_gets_its_fuel(world: World) -> None:
    uploads = real_uploads()
    assert len(uploads) == 557
    # What the drive holds, read from the log alone: every (time, key) with a number.
    readings: set[tuple[int, int]] = set()
    upload_times: set[int] = set()
    for upload in uploads:
        values = value_fields(upload)
        if not values:
            continue
        ts = int(dict(upload)["time"])
        upload_times.add(ts)
        readings.update((ts, int(key[1:], 16)) for key, raw in values if _storable(raw))
    keys = {key_id for _, key_id in readings}
    assert len(keys) == 89  # the "about 89 numeric keys each"

    owner = await world.user("surfrock@example.com")
    vehicle = await world.vehicle(owner, "ManVan")
    _, token = await world.device(vehicle, "phone")
    await send_all(world.client, token, uploads)

    async with world.app.state.obd2.sessionmaker() as session:
        rows = await session.execute(text("SELECT pid, count(*) FROM samples GROUP BY pid"))
        stored: dict[str, int] = {pid: int(count) for pid, count in rows}
    # Every key under a name of its own, and one session marker per upload time.
    assert set(stored) == {pid_name(key_id) for key_id in keys} | {TORQUE_SESSION}
    assert sum(stored.values()) == len(readings) + len(upload_times)
    assert stored[TORQUE_SESSION] == len(upload_times)
    assert {"RPM", "SPEED", "GPS_LAT", "TORQUE_FF125D", "TORQUE_FF1208", "TORQUE_14"} <= set(stored)

    client = await world.login("surfrock@example.com")
    catalogue = {
        p["name"]: p for p in (await client.get(f"/api/v1/vehicles/{vehicle}/pids")).json()
    }
    assert set(catalogue) == set(stored)
    flow = catalogue["TORQUE_FF125D"]
    assert (flow["display_name"], flow["unit"], flow["source"]) == (
        "Fuel flow rate/hour",
        "liters_per_hour",
        "torque",
    )
    assert flow["first_seen_ts"] == min(ts for ts, key in readings if key == 0xFF125D)
    assert (catalogue["RPM"]["display_name"], catalogue["RPM"]["source"]) == (
        "Engine speed",
        "obd",
    )
    # A mode-01 PID our table lacks, named by its key, labelled from Torque's list.
    trim = catalogue["TORQUE_14"]
    assert (trim["display_name"], trim["unit"], trim["source"]) == (
        "Fuel trim bank 1 sensor 1",
        "percent",
        "obd",
    )
    assert catalogue["GPS_LAT"]["source"] == "torque"
    history = await client.get(
        f"/api/v1/vehicles/{vehicle}/samples",
        params={"pid": "TORQUE_FF125D", "from": 1459259898000, "to": 1459262522000},
    )
    assert history.status_code == 200
    assert sum(history.json()["count"]) == stored["TORQUE_FF125D"]

    # The profile fills what nobody set; Torque's fuel type 2 is none of ours.
    car = (await client.get(f"/api/v1/vehicles/{vehicle}")).json()
    assert car["profile_name"] == "ManVan"
    assert car["weight_kg"] == pytest.approx(635.029296875)
    assert car["volumetric_efficiency_pct"] == 85.0
    assert (car["fuel_type"], car["fuel_type_source"]) == ("petrol", "default")
    events = (
        await client.get(
            f"/api/v1/vehicles/{vehicle}/events",
            params={"from": 1459259898000, "to": 1459262522000},
        )
    ).json()
    assert [(e["ts"], e["kind"], e["message"], e["event_class"]) for e in events] == [
        (1459259898221, "notice", "Trip started", "org.prowl.torque.map.notices.TripNotice")
    ]

    await run_worker(world.app)
    (trip,) = (await client.get(f"/api/v1/vehicles/{vehicle}/trips")).json()
    # The app's own figures, from its last upload.
    app_distance_km, app_fuel_l, app_average = 39.742657, 3.7879138, 7.679972
    assert trip["distance_km"] == pytest.approx(app_distance_km, rel=0.05)
    assert trip["fuel_source"] == "TORQUE_FUEL_FLOW"
    assert trip["fuel_used_l"] == pytest.approx(app_fuel_l, rel=0.03)
    assert trip["economy_l_per_100km"] == pytest.approx(
        trip["fuel_used_l"] / trip["distance_km"] * 100
    )
    # Within 10 % of the app's fuel used over its trip distance (9.53 L/100 km). The app's
    # own "trip average" of this drive, 7.68 L/100 km, is not that ratio (it is 19 % below
    # it all through the drive), so no figure consistent with the app's fuel used can come
    # within 10 % of it: the check against a trip average that is fuel over distance is made
    # on our own drive (test_torque.py).
    assert trip["economy_l_per_100km"] == pytest.approx(
        app_fuel_l / app_distance_km * 100, rel=0.10
    )
    assert app_fuel_l / app_distance_km * 100 > app_average * 1.2
    await client.aclose()
