import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from obd2_dashboard.models import ROLLUP_BUCKET_MS, FuelType
from obd2_dashboard.pids.definitions import TORQUE_FUEL_FLOW, TORQUE_SESSION
from obd2_dashboard.trips.segmenter import (
    GPS_PIDS,
    SESSION_MIN_GAP_MS,
    Segmenter,
    Totals,
    TripBuilder,
    TripState,
    fuel_litres_from_air,
    recounts,
)
from tests.trips.helpers import T0, Sample, drive

GAP = 300_000
MINUTE = ROLLUP_BUCKET_MS


def segment(samples: list[Sample], gap: int = GAP) -> list[TripState]:
    segmenter = Segmenter(gap)
    segmenter.feed(sorted(samples))
    return [trip.state for trip in segmenter.finish()]


def summed(samples: list[Sample], gap: int = GAP) -> list[Totals]:
    return [state.totals() for state in segment(samples, gap)]


def test_constant_speed_integrates_to_the_exact_distance() -> None:
    (state,) = segment(drive(T0, 601, speed=60.0))  # 600 s at 60 km/h
    trip = state.totals()
    assert trip.distance_km == pytest.approx(10.0)
    assert trip.distance_source == "speed"
    assert trip.moving_ms == 600_000
    assert trip.idle_ms == 0
    assert trip.max_speed == 60.0
    assert state.end_ts - state.start_ts == 600_000


def test_a_ramp_integrates_with_the_trapezoid_rule() -> None:
    # 0 → 100 km/h linearly over 100 s, sampled every 2 s: exact under the trapezoid rule.
    samples = [(T0 + i * 2000, "SPEED", i * 2.0) for i in range(51)]
    (trip,) = summed([(T0, "RPM", 900.0), *samples])
    assert trip.distance_km == pytest.approx(100 / 2 * 100 / 3600)


def test_an_odometer_takes_precedence_over_integrated_speed() -> None:
    samples = drive(T0, 601, speed=60.0)
    samples += [(T0, "ODOMETER", 12_000.0), (T0 + 600_000, "ODOMETER", 12_010.4)]
    (trip,) = summed(samples)
    assert trip.distance_source == "odometer"
    assert trip.distance_km == pytest.approx(10.4)
    assert trip.speed_km == pytest.approx(10.0)


def test_fuel_rate_is_integrated_in_litres() -> None:
    samples = drive(T0, 601) + [(T0 + i * 1000, "FUEL_RATE", 6.0) for i in range(601)]
    (trip,) = summed(samples)
    assert trip.fuel_rate_l == pytest.approx(1.0)  # 6 L/h for 10 minutes
    assert trip.maf_air_g is None


def test_torques_fuel_flow_is_integrated_in_litres_of_its_own() -> None:
    samples = drive(T0, 601) + [(T0 + i * 5000, TORQUE_FUEL_FLOW, 3.0) for i in range(121)]
    samples += [(T0 + i * 1000, "FUEL_RATE", 6.0) for i in range(601)]
    (trip,) = summed(samples)
    assert trip.fuel_flow_l == pytest.approx(0.5)  # 3 L/h for 10 minutes
    assert trip.fuel_rate_l == pytest.approx(1.0)  # each kept apart: the reader chooses


def _session(start: int, seconds: int, session: float) -> list[Sample]:
    """A drive with a Torque session marker every 5 s, as each upload carries one."""
    markers = [(start + i * 1000, TORQUE_SESSION, session) for i in range(0, seconds, 5)]
    return drive(start, seconds) + markers


def test_a_new_session_after_a_stop_ends_the_trip_within_the_join_gap() -> None:
    stop_ms = SESSION_MIN_GAP_MS + 30_000
    second = T0 + 300_000 + stop_ms
    same = _session(T0, 300, 1.0) + _session(second, 300, 1.0)
    assert len(segment(same)) == 1  # one session: the join gap decides, as ever
    new = _session(T0, 300, 1.0) + _session(second, 300, 2.0)
    first, then = segment(new)
    assert (first.start_ts, first.end_ts) == (T0, T0 + 299_000)
    assert then.start_ts == second
    assert then.last_session == (second + 295_000, 2.0)


def test_a_session_never_ends_a_drive_nor_holds_a_park_together() -> None:
    # The app restarted while driving: a new session with no stop ends nothing.
    restarted = _session(T0, 300, 1.0) + _session(T0 + 300_000, 300, 2.0)
    assert len(segment(restarted)) == 1
    # A short stop (under SESSION_MIN_GAP_MS) with a new session ends nothing either.
    brief = _session(T0, 300, 1.0) + _session(T0 + 299_000 + SESSION_MIN_GAP_MS - 1000, 60, 2.0)
    assert len(segment(brief)) == 1
    # One session across a park longer than the join gap is two trips all the same.
    parked = _session(T0, 300, 1.0) + _session(T0 + 300_000 + GAP + 60_000, 60, 1.0)
    assert len(segment(parked)) == 2


def test_a_new_session_before_the_engine_starts_ends_the_trip_at_the_engine_start() -> None:
    # The phone reconnects (new session, engine off) a while before the car moves again.
    second = T0 + 300_000 + 90_000
    samples = _session(T0, 300, 1.0)
    samples += [(second - 20_000, TORQUE_SESSION, 2.0), (second - 20_000, "RPM", 0.0)]
    samples += _session(second, 120, 2.0)
    first, then = segment(samples)
    assert first.end_ts == T0 + 299_000
    assert then.start_ts == second


def test_maf_becomes_fuel_by_air_fuel_ratio_and_density() -> None:
    samples = drive(T0, 1001) + [(T0 + i * 1000, "MAF", 10.0) for i in range(1001)]
    (trip,) = summed(samples)
    assert trip.fuel_rate_l is None
    assert trip.maf_air_g == pytest.approx(10_000.0)
    assert fuel_litres_from_air(10_000.0, FuelType.petrol) == pytest.approx(10_000 / 14.7 / 745)
    assert fuel_litres_from_air(10_000.0, FuelType.diesel) == pytest.approx(10_000 / 14.5 / 832)


def test_idle_is_engine_running_while_standing_still() -> None:
    samples = drive(T0, 61, speed=0.0, rpm=800.0) + drive(T0 + 61_000, 60, speed=30.0)
    (trip,) = summed(samples)
    assert trip.idle_ms == 61_000
    assert trip.moving_ms == 59_000


def test_a_stop_shorter_than_the_gap_joins_and_a_longer_one_splits() -> None:
    first = drive(T0, 600)
    fuel_stop = T0 + 600_000 + 240_000  # 4 min with the engine off and no samples
    second = drive(fuel_stop, 600)
    park = fuel_stop + 600_000 + 3_600_000
    third = drive(park, 300)
    trips = segment(first + second + third)
    assert [(t.start_ts, t.end_ts) for t in trips] == [
        (T0, fuel_stop + 599_000),
        (park, park + 299_000),
    ]
    # The engine-off stop is neither moving nor idle.
    first_trip = trips[0].totals()
    assert first_trip.moving_ms + first_trip.idle_ms == 599_000 + 599_000


def test_samples_outside_the_car_in_use_do_not_belong_to_a_trip() -> None:
    samples = drive(T0, 10)
    samples += [(T0 - 5000, "COOLANT_TEMP", 99.0), (T0 + 5000, "COOLANT_TEMP", 80.0)]
    samples += [(T0 + 20_000, "COOLANT_TEMP", 120.0), (T0 + 20_000, "RPM", 0.0)]
    (trip,) = summed(samples)
    assert trip.max_coolant == 80.0
    assert trip.count == 21


def test_gps_fixes_pair_latitude_and_longitude() -> None:
    samples = drive(T0, 5)
    for i in range(5):
        samples += [(T0 + i * 1000, "GPS_LAT", 52.0 + i / 1000), (T0 + i * 1000, "GPS_LON", 4.5)]
    samples.append((T0 + 2500, "GPS_LAT", 1.0))  # no longitude near it: not a fix
    segmenter = Segmenter(GAP)
    segmenter.feed(sorted(samples))
    (trip,) = segmenter.finish()
    assert [p[0] for p in trip.new_points] == [T0 + i * 1000 for i in range(5)]
    assert trip.new_points[1] == (T0 + 1000, 52.001, 4.5)
    assert trip.state.points == 5


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=400_000),
            st.sampled_from(
                [
                    "RPM",
                    "SPEED",
                    "FUEL_RATE",
                    "MAF",
                    "COOLANT_TEMP",
                    "GPS_LAT",
                    TORQUE_FUEL_FLOW,
                    TORQUE_SESSION,
                ]
            ),
            st.sampled_from([0.0, 0.0, 12.5, 40.0, 800.0]),
        ),
        min_size=1,
        max_size=80,
    ),
    cut=st.integers(min_value=0, max_value=80),
)
def test_resuming_a_trip_from_its_stored_state_equals_one_pass(
    steps: list[tuple[int, str, float]], cut: int
) -> None:
    samples: list[Sample] = []
    ts = T0
    for delta, pid, value in steps:
        ts += delta
        samples.append((ts, pid, value))
    whole = segment(samples)
    # What the worker does: store the trips, then resume the last one with the newer samples.
    head = samples[: min(cut, len(samples))]
    stored = segment(head)
    if not stored:
        return
    last = TripState.from_json(stored[-1].to_json())
    assert last is not None
    resumed = Segmenter(GAP, resume=TripBuilder(last, resumed=True))
    resumed.feed(s for s in samples if s[0] > last.end_ts)
    after = [t.state for t in resumed.finish()]
    combined = stored[:-1] + after
    assert [s.to_json() for s in combined] == [s.to_json() for s in whole]


# Weighted towards the integrated PIDs, so that readings often lie within STALE_MS of each other.
_PIDS = [
    "RPM",
    "SPEED",
    "SPEED",
    "FUEL_RATE",
    TORQUE_FUEL_FLOW,
    "MAF",
    "COOLANT_TEMP",
    "ODOMETER",
    "GPS_LAT",
    "GPS_LON",
]
# 0: a duplicate instant; 16 and 40 s: gaps longer than STALE_MS inside the trip.
_STEPS_MS = [0, 50, 400, 1000, 1000, 2000, 3000, 3000, 16_000, 40_000]
_VALUES = [0.0, 3.0, 12.5, 40.0, 800.0]


def _late_inside(rng: random.Random, state: TripState) -> list[Sample]:
    """Samples inside the trip's bounds (where even a running one cannot move them), often just
    before a minute ends (their readings count in the next minute too) or at the very instant
    of an existing sample."""
    late: list[Sample] = []
    for _ in range(rng.randint(1, 8)):
        ts = rng.randint(state.start_ts, state.end_ts)
        if rng.random() < 0.5:
            ts = ts - ts % MINUTE + MINUTE - rng.choice([1, 500, 5_000, 14_000])
        late.append((max(state.start_ts, min(ts, state.end_ts)), rng.choice(_PIDS), 1.5))
    return late


@pytest.mark.parametrize("seed", range(0, 400, 50))
def test_recounting_the_minutes_late_samples_touch_equals_one_pass(seed: int) -> None:
    for case in range(seed, seed + 50):
        rng = random.Random(case)
        samples: list[Sample] = [(T0, "RPM", 900.0)]
        for _ in range(rng.randint(50, 400)):
            ts = samples[-1][0] + rng.choice(_STEPS_MS)
            samples.append((ts, rng.choice(_PIDS), rng.choice(_VALUES)))
        stored = segment(samples)
        if len(stored) != 1:
            continue
        state = TripState.from_json(stored[0].to_json())
        assert state is not None
        late = _late_inside(rng, state)
        # The same instant as a stored sample, with another value: a duplicate reading.
        if rng.random() < 0.3:
            ts, pid, _ = rng.choice(samples)
            late.append((ts, pid, 2.5))
        everything = sorted(samples + late)
        (whole,) = segment(everything)
        # What the worker does: the minutes that gained samples and the minute after each.
        changed = {t - t % MINUTE for t, _, _ in late}
        for recount in recounts(state, changed):
            fresh = TripBuilder(state.blank())
            for sample in everything:
                if recount.since <= sample[0] <= recount.until:
                    fresh.add(*sample)
            state.take_minutes(fresh.state, recount.minutes)
        if any(pid in GPS_PIDS for _, pid, _ in late):
            fresh = TripBuilder(state.blank())
            for t, pid, value in everything:
                if pid in GPS_PIDS and state.start_ts <= t <= state.end_ts:
                    fresh.add_gps(t, pid, value)
            state.take_track(fresh.state)
        assert state.to_json() == whole.to_json(), f"case {case}"
