import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from obd2_dashboard.models import FuelType
from obd2_dashboard.trips.segmenter import (
    Segmenter,
    TripBuilder,
    TripState,
    fuel_litres_from_air,
)
from tests.trips.helpers import T0, Sample, drive

GAP = 300_000


def segment(samples: list[Sample], gap: int = GAP) -> list[TripState]:
    segmenter = Segmenter(gap)
    segmenter.feed(sorted(samples))
    return [trip.state for trip in segmenter.finish()]


def test_constant_speed_integrates_to_the_exact_distance() -> None:
    (trip,) = segment(drive(T0, 601, speed=60.0))  # 600 s at 60 km/h
    assert trip.distance_km == pytest.approx(10.0)
    assert trip.distance_source == "speed"
    assert trip.moving_ms == 600_000
    assert trip.idle_ms == 0
    assert trip.max_speed == 60.0
    assert trip.end_ts - trip.start_ts == 600_000


def test_a_ramp_integrates_with_the_trapezoid_rule() -> None:
    # 0 → 100 km/h linearly over 100 s, sampled every 2 s: exact under the trapezoid rule.
    samples = [(T0 + i * 2000, "SPEED", i * 2.0) for i in range(51)]
    (trip,) = segment([(T0, "RPM", 900.0), *samples])
    assert trip.distance_km == pytest.approx(100 / 2 * 100 / 3600)


def test_an_odometer_takes_precedence_over_integrated_speed() -> None:
    samples = drive(T0, 601, speed=60.0)
    samples += [(T0, "ODOMETER", 12_000.0), (T0 + 600_000, "ODOMETER", 12_010.4)]
    (trip,) = segment(samples)
    assert trip.distance_source == "odometer"
    assert trip.distance_km == pytest.approx(10.4)
    assert trip.speed_km == pytest.approx(10.0)


def test_fuel_rate_is_integrated_in_litres() -> None:
    samples = drive(T0, 601) + [(T0 + i * 1000, "FUEL_RATE", 6.0) for i in range(601)]
    (trip,) = segment(samples)
    assert trip.fuel_rate_l == pytest.approx(1.0)  # 6 L/h for 10 minutes
    assert trip.maf_air_g is None


def test_maf_becomes_fuel_by_air_fuel_ratio_and_density() -> None:
    samples = drive(T0, 1001) + [(T0 + i * 1000, "MAF", 10.0) for i in range(1001)]
    (trip,) = segment(samples)
    assert trip.fuel_rate_l is None
    assert trip.maf_air_g == pytest.approx(10_000.0)
    assert fuel_litres_from_air(10_000.0, FuelType.petrol) == pytest.approx(10_000 / 14.7 / 745)
    assert fuel_litres_from_air(10_000.0, FuelType.diesel) == pytest.approx(10_000 / 14.5 / 832)


def test_idle_is_engine_running_while_standing_still() -> None:
    samples = drive(T0, 61, speed=0.0, rpm=800.0) + drive(T0 + 61_000, 60, speed=30.0)
    (trip,) = segment(samples)
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
    assert trips[0].moving_ms + trips[0].idle_ms == 599_000 + 599_000


def test_samples_outside_the_car_in_use_do_not_belong_to_a_trip() -> None:
    samples = drive(T0, 10)
    samples += [(T0 - 5000, "COOLANT_TEMP", 99.0), (T0 + 5000, "COOLANT_TEMP", 80.0)]
    samples += [(T0 + 20_000, "COOLANT_TEMP", 120.0), (T0 + 20_000, "RPM", 0.0)]
    (trip,) = segment(samples)
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
            st.sampled_from(["RPM", "SPEED", "FUEL_RATE", "MAF", "COOLANT_TEMP", "GPS_LAT"]),
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
