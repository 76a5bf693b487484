"""The demo car drives like a real one: properties of its drives, the same for a seed."""

from collections import Counter
from datetime import UTC, datetime
from itertools import pairwise

import pytest

from obd2_protocol import demo_car
from obd2_protocol.demo_car import HistoryDrive, Reading

DAY_MS = 86_400_000
SEED = 15
# A Friday evening: the fortnight before it has ten weekdays and two weekends.
NOW_MS = int(datetime(2026, 11, 20, 21, 0, tzinfo=UTC).timestamp() * 1000)
DAYS = 14
DTC_AFTER_MS = NOW_MS - 5 * DAY_MS
# The server ends a trip after 5 minutes without the car in use.
TRIP_JOIN_GAP_MS = 300_000


@pytest.fixture(scope="module")
def drives() -> list[HistoryDrive]:
    return list(
        demo_car.history(SEED, NOW_MS - DAYS * DAY_MS, NOW_MS, tz=UTC, dtc_after_ms=DTC_AFTER_MS)
    )


def _path(drive: HistoryDrive) -> demo_car.Path:
    places = demo_car.PLACES
    return demo_car.Path(demo_car.ROUTE, places[drive.plan.origin], places[drive.plan.destination])


def _integrated_km(readings: list[Reading]) -> float:
    return sum(
        (a.speed_kmh + b.speed_kmh) / 2 * (b.ts_ms - a.ts_ms) / 3_600_000
        for a, b in pairwise(readings)
    )


def _gps_km(readings: list[Reading]) -> float:
    return (
        sum(demo_car.haversine_m(a.lat, a.lon, b.lat, b.lon) for a, b in pairwise(readings)) / 1000
    )


def test_the_same_seed_drives_the_same_and_another_seed_does_not() -> None:
    start, end = NOW_MS - 2 * DAY_MS, NOW_MS
    first = list(demo_car.history(SEED, start, end, tz=UTC))
    again = list(demo_car.history(SEED, start, end, tz=UTC))
    other = list(demo_car.history(SEED + 1, start, end, tz=UTC))
    assert first
    assert [d.readings for d in first] == [d.readings for d in again]
    assert [d.plan.start_ms for d in first] != [d.plan.start_ms for d in other]


def test_a_few_drives_a_day_at_plausible_hours_with_the_engine_off_between(
    drives: list[HistoryDrive],
) -> None:
    per_day = Counter(datetime.fromtimestamp(d.plan.start_ms / 1000, UTC).date() for d in drives)
    weekdays = [day for day in per_day if day.weekday() < 5]
    assert len(weekdays) == 10
    assert all(per_day[day] >= 2 for day in weekdays)
    assert len(per_day) >= 12
    assert 2 <= len(drives) / len(per_day) <= 4
    for drive in drives:
        hour = datetime.fromtimestamp(drive.plan.start_ms / 1000, UTC).hour
        assert 7 <= hour <= 21, hour
        assert drive.plan.start_ms >= NOW_MS - DAYS * DAY_MS
        assert drive.readings[-1].ts_ms <= NOW_MS
        # Each drive ends with the engine switched off.
        last = drive.readings[-1]
        assert (last.engine_on, last.rpm, last.speed_kmh) == (False, 0.0, 0.0)
        assert all(r.engine_on for r in drive.readings[:10])
    for before, after in pairwise(drives):
        parked = after.readings[0].ts_ms - before.readings[-1].ts_ms
        assert parked > TRIP_JOIN_GAP_MS


def test_speed_is_plausible_and_kept_near_the_limits(drives: list[HistoryDrive]) -> None:
    fastest = 0.0
    for drive in drives:
        path = _path(drive)
        for reading in drive.readings:
            assert 0 <= reading.speed_kmh <= path.limit(reading.distance_m) + 10
            fastest = max(fastest, reading.speed_kmh)
    assert 100 < fastest <= 130
    commutes = [d for d in drives if demo_car.WORK in (d.plan.origin, d.plan.destination)]
    assert commutes
    assert all(max(r.speed_kmh for r in d.readings) > 100 for d in commutes)


def test_the_car_stops_at_red_lights_and_only_there(drives: list[HistoryDrive]) -> None:
    stops_at_lights = 0
    for drive in drives:
        path = _path(drive)
        lines = [x - 1.0 for x, _ in path.lights]
        moved = False
        for before, now in pairwise(drive.readings):
            moved = moved or now.speed_kmh > 0
            stopped = before.speed_kmh > 0 and now.speed_kmh == 0 and now.engine_on
            if not (moved and stopped) or now.distance_m >= path.length_m - 1.0:
                continue
            # A stop on the way is at a light's stop line, or at the pump of a fuel stop.
            assert drive.plan.refuel or any(abs(now.distance_m - x) < 1.0 for x in lines), (
                now.distance_m,
                lines,
            )
            stops_at_lights += 1
    assert stops_at_lights >= len(drives)


def test_gps_moves_only_with_the_car_and_agrees_with_its_speed(
    drives: list[HistoryDrive],
) -> None:
    for drive in drives:
        readings = drive.readings
        for before, now in pairwise(readings):
            if before.speed_kmh == 0 and now.speed_kmh == 0:
                assert (before.lat, before.lon) == (now.lat, now.lon)
        # GPS fixes every 2 s (as the demo history reads them) against the integrated speed.
        fixes = [*readings[::4], readings[-1]]
        integrated = _integrated_km(readings)
        assert _gps_km(fixes) == pytest.approx(integrated, rel=0.01)
        assert integrated * 1000 == pytest.approx(_path(drive).length_m, rel=0.01)
        end = demo_car.ROUTE.position(demo_car.PLACES[drive.plan.destination])
        assert demo_car.haversine_m(*end, readings[-1].lat, readings[-1].lon) < 5


def test_fuel_rate_follows_speed_rpm_and_load(drives: list[HistoryDrive]) -> None:
    for drive in drives:
        readings = drive.readings
        litres = sum(r.fuel_rate_lph * demo_car.STEP_S / 3600 for r in readings)
        economy = litres / _integrated_km(readings) * 100
        assert 4.5 < economy < 12, economy
        for now, after in pairwise(readings):
            if not now.engine_on:
                assert now.fuel_rate_lph == now.maf_gps == 0
                continue
            if now.fuel_rate_lph > 0:
                # Air at the stoichiometric ratio: MAF and FUEL_RATE tell the same story.
                air = now.fuel_rate_lph * 745 * 14.7 / 3600
                assert now.maf_gps == pytest.approx(air)
            else:
                # No fuel only on the overrun: rolling fast in gear, slowing down.
                assert now.speed_kmh > 20
                assert now.rpm > 1200
                assert after.speed_kmh < now.speed_kmh
            if now.speed_kmh == 0 and now.coolant_c > 85:
                assert 0.6 < now.fuel_rate_lph < 1.6  # a warm idle
                assert 15 < now.load_pct < 35
            assert 0 <= now.load_pct <= 100
            assert 0 <= now.throttle_pct <= 100
    cruising = [
        r
        for d in drives
        for r in d.readings
        if r.engine_on and r.coolant_c > 85 and r.fuel_rate_lph > 0
    ]
    motorway = [r.fuel_rate_lph for r in cruising if r.speed_kmh > 105]
    town = [r.fuel_rate_lph for r in cruising if 40 < r.speed_kmh < 55]
    assert sum(motorway) / len(motorway) > 2 * sum(town) / len(town)


def test_the_fuel_level_falls_with_the_fuel_burnt(drives: list[HistoryDrive]) -> None:
    for drive in drives:
        if drive.plan.refuel:
            continue
        readings = drive.readings
        litres = sum(r.fuel_rate_lph * demo_car.STEP_S / 3600 for r in readings)
        fell = readings[0].fuel_pct - readings[-1].fuel_pct
        # The level at rest (the sender sloshes while moving, not at the start and the end).
        assert fell == pytest.approx(litres / demo_car.TANK_L * 100, abs=0.05)


def test_a_low_tank_is_filled_at_a_stop_inside_the_drive() -> None:
    plan = demo_car.DrivePlan(NOW_MS, demo_car.HOME, demo_car.WORK, seed=7, refuel=True)
    cold = demo_car.CarCondition(coolant_c=10.0, oil_c=10.0, fuel_pct=15.0, ts_ms=NOW_MS)
    readings = demo_car.Drive(plan, cold, seed=SEED).run()
    off = [r for r in readings[:-1] if not r.engine_on]
    assert off
    stopped_ms = off[-1].ts_ms - off[0].ts_ms
    # The engine is off at the pump for less than the trip join gap: one trip, not two.
    assert 150_000 < stopped_ms < TRIP_JOIN_GAP_MS
    assert readings[0].fuel_pct < 16
    assert readings[-1].fuel_pct > 90
    assert readings[-1].distance_m == pytest.approx(demo_car.ROUTE.length_m, abs=1.0)


def test_the_coolant_warms_up_from_cold_and_holds_at_the_thermostat(
    drives: list[HistoryDrive],
) -> None:
    first_of_day: dict[object, HistoryDrive] = {}
    for drive in drives:
        day = datetime.fromtimestamp(drive.plan.start_ms / 1000, UTC).date()
        first_of_day.setdefault(day, drive)
    for drive in first_of_day.values():
        start = drive.readings[0]
        assert start.coolant_c < start.ambient_c + 8  # cold after the night
    for drive in drives:
        temps = [r.coolant_c for r in drive.readings if r.engine_on]
        assert max(temps) <= 100
        warming = [t for t in temps if t < 88]
        assert all(b >= a for a, b in pairwise(warming))
        minutes = (drive.readings[-1].ts_ms - drive.readings[0].ts_ms) / 60_000
        if minutes > 10:
            assert temps[-1] > 80


def test_a_trouble_code_is_pending_on_one_drive_and_confirmed_on_the_next(
    drives: list[HistoryDrive],
) -> None:
    told = [(i, e) for i, d in enumerate(drives) for e in d.dtc_events]
    assert len(told) == 2
    (first, pending), (second, stored) = told
    assert second == first + 1
    assert (pending.stored, pending.pending) == ((), (demo_car.DTC_CODE,))
    assert (stored.stored, stored.pending) == ((demo_car.DTC_CODE,), ())
    assert drives[first].plan.start_ms >= DTC_AFTER_MS
    assert set(stored.freeze_frame) == {"RPM", "SPEED", "COOLANT_TEMP", "ENGINE_LOAD"}
    assert stored.freeze_frame["SPEED"] >= 40
    readings = drives[first].readings
    assert readings[0].ts_ms <= pending.ts_ms <= readings[-1].ts_ms
    # Without a start for the story, nothing is told.
    quiet = demo_car.history(SEED, NOW_MS - 3 * DAY_MS, NOW_MS, tz=UTC)
    assert not any(d.dtc_events for d in quiet)


def test_the_live_car_parks_then_drives_round_for_ever() -> None:
    car = demo_car.LiveCar(SEED, NOW_MS)
    twin = demo_car.LiveCar(SEED, NOW_MS)
    assert not car.at(0.0).engine_on
    assert car.drives_begun(0.0) == 0
    states = [car.at(t / 2) for t in range(2 * 3 * 3600)]
    assert states[-1] == twin.at(3 * 3600 - 0.5)
    assert car.drives_begun(3 * 3600) >= 6
    # Engine-off stretches between drives are longer than the trip join gap.
    stretches: list[int] = []
    run = 0
    for state in states:
        if state.engine_on:
            if run:
                stretches.append(run)
            run = 0
        else:
            run += 1
    assert len(stretches) >= 5
    assert all(s * 500 > TRIP_JOIN_GAP_MS for s in stretches[1:])
    assert max(s.speed_kmh for s in states) > 100
    assert all(s.speed_kmh == 0 for s in states if not s.engine_on)
