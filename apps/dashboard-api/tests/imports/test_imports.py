"""Imports of existing logs, on both backends, through the ingest path as backfill."""

import csv
import io
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from obd2_dashboard.imports.formats import ImportFormat, UnreadableLogError
from obd2_dashboard.imports.service import IMPORT_DEVICE, ImportOptions, import_log
from tests.conftest import World

FIXTURES = Path(__file__).parent / "fixtures"
TORQUE_LOG = FIXTURES / "torque-tracklog.csv"
GPX_TRACK = FIXTURES / "sloth-at-lemans.gpx"
MPH = 1.609344


async def _owner(
    world: World, email: str = "importer@example.com"
) -> tuple[int, httpx.AsyncClient]:
    user = await world.user(email)
    vehicle = await world.vehicle(user, "Imported car")
    return vehicle, await world.login(email)


async def _rows(world: World, vehicle: int) -> list[tuple[int, str, float]]:
    async with world.app.state.obd2.sessionmaker() as session:
        result = await session.execute(
            text("SELECT ts, pid, value FROM samples WHERE vehicle_id = :v ORDER BY ts, pid"),
            {"v": vehicle},
        )
        return [(int(ts), str(pid), float(value)) for ts, pid, value in result]


async def _count(world: World, sql: str) -> int:
    async with world.app.state.obd2.sessionmaker() as session:
        return int((await session.execute(text(sql))).scalar_one())


async def test_a_torque_log_is_stored_in_our_units_with_a_trip(world: World) -> None:
    vehicle, owner = await _owner(world)
    rule = await owner.post(
        f"/api/v1/vehicles/{vehicle}/alert-rules",
        json={
            "name": "fast",
            "kind": "threshold",
            "pid": "SPEED",
            "op": "above",
            "threshold": 20,
            "duration_s": 1,
        },
    )
    assert rule.status_code == 201, rule.text
    maker = world.app.state.obd2.sessionmaker
    summary = await import_log(maker, vehicle, TORQUE_LOG.read_bytes(), ImportOptions())

    assert summary.format == "torque-csv"
    assert summary.stored == summary.samples_read == 1829
    assert summary.duplicates == 0
    assert "G(x)" in summary.unknown_columns
    rows = await _rows(world, vehicle)
    by_pid: dict[str, list[tuple[int, float]]] = {}
    for ts, pid, value in rows:
        by_pid.setdefault(pid, []).append((ts, value))
    # 150 °F is 65.56 °C; 0.5 mph is 0.80 km/h; psi to kPa; Torque's fuel flow kept.
    assert by_pid["COOLANT_TEMP"][0][1] == pytest.approx(65.5556, abs=1e-3)
    assert len(by_pid["COOLANT_TEMP"]) == 19  # "-" is no value
    assert by_pid["SPEED"][1][1] == pytest.approx(0.5 * MPH, abs=1e-6)
    assert by_pid["INTAKE_PRESSURE"][0][1] == pytest.approx(4.5 * 6.894757, abs=1e-3)
    assert "TORQUE_FF125D" in by_pid
    assert by_pid["GPS_SPEED"][1][1] == pytest.approx(0.22 * 3.6)  # the phone's m/s in km/h
    # GPS time is preferred; Device Time stands in where GPS has no fix ("-").
    assert by_pid["RPM"][0][0] == 1749893400000
    assert by_pid["RPM"][1][0] == 1749893401000

    trips = (
        await owner.get(
            f"/api/v1/vehicles/{vehicle}/trips",
            params={"from": 1749893000000, "to": 1749894000000},
        )
    ).json()
    assert len(trips) == 1
    assert trips[0]["finished"] is True
    assert trips[0]["distance_km"] > 0.5
    assert trips[0]["track_points"] > 50
    history = (
        await owner.get(
            f"/api/v1/vehicles/{vehicle}/samples",
            params={"pid": "SPEED", "from": 1749800000000, "to": 1749990000000},
        )
    ).json()
    assert history["points"]
    # History reaches nobody: no alert, nothing left for the worker, the device retired.
    assert (await owner.get(f"/api/v1/vehicles/{vehicle}/alerts")).json() == []
    assert await _count(world, "SELECT count(*) FROM ingest_outbox") == 0
    devices = (await owner.get(f"/api/v1/vehicles/{vehicle}/devices")).json()
    assert [(d["name"], d["revoked_at"] is not None) for d in devices] == [(IMPORT_DEVICE, True)]


async def test_importing_a_file_twice_stores_nothing_twice(world: World) -> None:
    vehicle, _ = await _owner(world)
    maker = world.app.state.obd2.sessionmaker
    data = TORQUE_LOG.read_bytes()
    first = await import_log(maker, vehicle, data, ImportOptions(fmt=ImportFormat.torque_csv))
    again = await import_log(maker, vehicle, data, ImportOptions())
    assert first.stored == 1829
    assert again.stored == 0
    assert again.duplicates == again.samples_read == 1829
    assert len(await _rows(world, vehicle)) == 1829


async def test_a_real_gpx_track_becomes_gps_samples(world: World) -> None:
    vehicle, _ = await _owner(world)
    maker = world.app.state.obd2.sessionmaker
    dry = await import_log(maker, vehicle, GPX_TRACK.read_bytes(), ImportOptions(dry_run=True))
    assert dry.samples_read == 34
    assert await _rows(world, vehicle) == []

    summary = await import_log(maker, vehicle, GPX_TRACK.read_bytes(), ImportOptions())
    assert summary.format == "gpx"
    assert summary.stored == 34  # 17 track points, latitude and longitude
    rows = await _rows(world, vehicle)
    assert rows[0] == (1372183600000, "GPS_LAT", 47.951649874)
    assert rows[1] == (1372183600000, "GPS_LON", 0.206558027)
    again = await import_log(maker, vehicle, GPX_TRACK.read_bytes(), ImportOptions())
    assert (again.stored, again.duplicates) == (0, 34)


async def test_an_exported_csv_imports_into_another_vehicle_as_the_same_samples(
    world: World,
) -> None:
    vehicle, owner = await _owner(world)
    maker = world.app.state.obd2.sessionmaker
    await import_log(maker, vehicle, TORQUE_LOG.read_bytes(), ImportOptions())
    pids = "COOLANT_TEMP,GPS_LAT,GPS_LON,INTAKE_PRESSURE,RPM,SPEED,TORQUE_FF125D"
    export = await owner.get(
        f"/api/v1/vehicles/{vehicle}/samples.csv",
        params={"pid": pids, "from": 1749893000000, "to": 1749894000000},
    )
    assert export.status_code == 200, export.text
    header = next(csv.reader(io.StringIO(export.text)))
    assert header[:2] == ["ts", "time"]

    other = await world.vehicle(await world.user("second@example.com"), "Second car")
    summary = await import_log(maker, other, export.content, ImportOptions())
    assert summary.format == "csv"
    assert summary.unknown_columns == []
    original = [r for r in await _rows(world, vehicle) if r[1] in pids.split(",")]
    copied = await _rows(world, other)
    assert summary.stored == len(original) == len(copied)
    for (ts, pid, value), (ts2, pid2, value2) in zip(original, copied, strict=True):
        assert (ts, pid) == (ts2, pid2)
        assert value2 == pytest.approx(value, rel=1e-4, abs=1e-4)  # as exported, rounded

    # Into the vehicle it came from: every reading is there already, from the first import.
    back = await import_log(maker, vehicle, export.content, ImportOptions())
    assert (back.stored, back.duplicates) == (0, len(original))


def rows_of(rows: list[tuple[int, str, float]]) -> list[tuple[int, str, object]]:
    """The rows, typed so that a row with an approximate value can be looked for in them."""
    return list(rows)


async def test_a_generic_csv_by_name_by_map_and_by_rate(world: World) -> None:
    vehicle, owner = await _owner(world)
    maker = world.app.state.obd2.sessionmaker
    named = (
        b"timestamp,ENGINE_RPM,VEHICLE_SPEED,oil (F),Boost\n"
        b"2025-06-14T09:30:00Z,900,0,-,0.5\n"
        b"1749893401,1000,12,212,0.6\n"
        b"1749893402000,1100,20,,0.7\n"
    )
    summary = await import_log(
        maker, vehicle, named, ImportOptions(mapping={"oil (F)": "OIL_TEMP"})
    )
    assert summary.stored == 7
    assert summary.unknown_columns == ["Boost"]
    rows = await _rows(world, vehicle)
    assert (1749893401000, "OIL_TEMP", 212.0) in rows  # --map takes the figure as given
    assert (1749893402000, "SPEED", 20.0) in rows

    # A name of the file's own: stored in the unit of its quantity, recorded in the catalogue.
    own = b"time,BOOST_PRESSURE (psi)\n1749893500,10\n"
    assert (await import_log(maker, vehicle, own, ImportOptions())).stored == 1
    assert (1749893500000, "BOOST_PRESSURE", pytest.approx(68.94757, abs=1e-4)) in rows_of(
        await _rows(world, vehicle)
    )
    catalogue = (await owner.get(f"/api/v1/vehicles/{vehicle}/pids")).json()
    boost = next(p for p in catalogue if p["name"] == "BOOST_PRESSURE")
    assert (boost["display_name"], boost["unit"], boost["source"]) == (
        "BOOST_PRESSURE",
        "kPa",
        "import",
    )

    timeless = b"RPM,SPEED\n800,0\n900,5\n1000,10\n"
    with pytest.raises(UnreadableLogError, match="--rate-hz"):
        await import_log(maker, vehicle, timeless, ImportOptions())
    rated = await import_log(
        maker, vehicle, timeless, ImportOptions(rate_hz=2, start_ms=1749900000000)
    )
    assert rated.stored == 6
    assert (1749900001000, "RPM", 1000.0) in await _rows(world, vehicle)


async def test_bad_input_is_refused_or_skipped_with_a_reason_and_loses_nothing_else(
    world: World,
) -> None:
    vehicle, _ = await _owner(world)
    maker = world.app.state.obd2.sessionmaker
    for data, fmt, reason in (
        (GPX_TRACK.read_bytes(), ImportFormat.csv, "XML"),
        (TORQUE_LOG.read_bytes(), ImportFormat.gpx, "GPX"),
        (b"\x00\x01\x02garbage", None, "neither a CSV"),
        (b"colour,shape\nred,round\n", ImportFormat.csv, "time column"),
        (b"time,Gearbox,Wipers\n1749893401,1,2\n", None, "no column names a value"),
        (b"time,SPEED (furlongs)\n1749893401,1\n", None, "no column names a value"),
    ):
        with pytest.raises(UnreadableLogError, match=reason):
            await import_log(maker, vehicle, data, ImportOptions(fmt=fmt))
    assert await _rows(world, vehicle) == []
    assert await _count(world, "SELECT count(*) FROM devices") == 0

    megabyte = "9" * 1_000_000
    data = (
        "time,RPM,SPEED (km/h),Mystery\n"
        "2025-06-14T09:30:00Z,900,0,1\n"
        f"2025-06-14T09:30:01Z,{megabyte},5,2\n"
        "not a time,950,6,3\n"
        "2025-06-14T09:30:02Z,abc,7\n"
        "2025-06-14T09:30:03Z,1000,8,4,extra,cells\n"
    ).encode()
    summary = await import_log(maker, vehicle, data, ImportOptions())
    # The megabyte row is one CSV cannot read; the others keep every value they have.
    assert summary.skipped_rows == {
        "unreadable CSV row (field larger than field limit (131072))": 1,
        "no readable time": 1,
    }
    assert summary.skipped_values == {"RPM: not a number": 1}
    assert summary.unknown_columns == ["Mystery"]
    assert summary.stored == 5
    assert [(pid, value) for _, pid, value in await _rows(world, vehicle)] == [
        ("RPM", 900.0),
        ("SPEED", 0.0),
        ("SPEED", 7.0),
        ("RPM", 1000.0),
        ("SPEED", 8.0),
    ]


async def test_readings_the_vehicles_agent_stored_are_not_stored_again(world: World) -> None:
    vehicle, _ = await _owner(world)
    _, token = await world.device(vehicle, "agent")
    sent = await world.client.post(
        "/api/v1/ingest",
        json={"samples": [{"seq": 7, "ts": 1749893400000, "pid": "RPM", "value": 900.0}]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert sent.status_code == 200, sent.text
    log = b"ts,RPM\n1749893400000,900\n1749893401000,950\n"
    summary = await import_log(world.app.state.obd2.sessionmaker, vehicle, log, ImportOptions())
    assert (summary.stored, summary.duplicates) == (1, 1)
    assert await _rows(world, vehicle) == [
        (1749893400000, "RPM", 900.0),
        (1749893401000, "RPM", 950.0),
    ]
