import random
from collections.abc import Sequence

from obd2_dashboard.alerts.evaluation import Condition, find_episodes

HOT = Condition(
    pid="COOLANT_TEMP", op="above", threshold=105, clear_threshold=100, duration_ms=30_000
)
LOW_BATTERY = Condition(
    pid="ELM_VOLTAGE",
    op="below",
    threshold=11.8,
    clear_threshold=12.2,
    duration_ms=0,
    while_parked=True,
)


def _series(
    pid: str, start: int, values: Sequence[float], step_ms: int = 5_000
) -> list[tuple[int, str, float]]:
    return [(start + i * step_ms, pid, v) for i, v in enumerate(values)]


def test_fires_once_the_condition_has_held_for_the_duration() -> None:
    rows = _series("COOLANT_TEMP", 0, [100, 106, 107, 108, 109, 110, 111, 112, 108])
    (episode,) = find_episodes(rows, HOT)
    assert episode.start_ts == 5_000
    assert episode.fire_ts == 35_000  # the first sample 30 s after the start
    assert episode.fire_value == 112
    assert episode.end_ts is None
    assert episode.peak == 112


def test_too_short_an_episode_does_not_fire() -> None:
    (episode,) = find_episodes(_series("COOLANT_TEMP", 0, [106, 107, 99]), HOT)
    assert episode.fire_ts is None
    assert episode.end_ts == 10_000


def test_hysteresis_keeps_one_episode_through_values_between_the_thresholds() -> None:
    values = [106] * 8 + [103, 101, 104, 102] + [106] * 3 + [99, 106]
    episodes = find_episodes(_series("COOLANT_TEMP", 0, values), HOT)
    assert len(episodes) == 2
    first, second = episodes
    assert first.fire_ts == 30_000
    assert first.end_ts == 15 * 5_000  # the 99
    assert second.start_ts == 16 * 5_000
    assert second.fire_ts is None


def test_a_gap_in_the_samples_ends_the_episode() -> None:
    rows = _series("COOLANT_TEMP", 0, [106, 107]) + _series("COOLANT_TEMP", 600_000, [108] * 8)
    first, second = find_episodes(rows, HOT)
    assert first.end_ts == 5_000
    assert first.fire_ts is None
    assert second.start_ts == 600_000
    assert second.fire_ts == 630_000


def test_the_result_does_not_depend_on_arrival_order() -> None:
    rows = _series("COOLANT_TEMP", 0, [100, 106, 107, 108, 109, 110, 111, 112, 99, 106] * 5)
    expected = find_episodes(rows, HOT)
    shuffled = rows[:]
    random.Random(7).shuffle(shuffled)
    # What the repository does: every raw row of the window, ordered by time.
    assert find_episodes(sorted(shuffled), HOT) == expected


def test_low_battery_only_counts_while_parked() -> None:
    driving = sorted(_series("ELM_VOLTAGE", 0, [11.5] * 4) + _series("RPM", 0, [800.0] * 4))
    assert find_episodes(driving, LOW_BATTERY) == []
    stopped_engine = sorted(
        _series("ELM_VOLTAGE", 0, [11.5] * 4)
        + _series("RPM", 0, [0.0] * 4)
        + _series("SPEED", 0, [0.0] * 4)
    )
    (episode,) = find_episodes(stopped_engine, LOW_BATTERY)
    assert episode.fire_ts == 0
    # No RPM for a while (the agent only sends the voltage heartbeat): parked too.
    heartbeat = sorted(_series("RPM", 0, [800.0]) + _series("ELM_VOLTAGE", 120_000, [11.6]))
    (episode,) = find_episodes(heartbeat, LOW_BATTERY)
    assert episode.fire_ts == 120_000


def test_below_rules_clear_above_their_clear_threshold() -> None:
    rows = _series("ELM_VOLTAGE", 0, [11.7, 12.0, 11.9, 12.3, 11.7])
    first, second = find_episodes(rows, LOW_BATTERY)
    assert (first.start_ts, first.end_ts) == (0, 15_000)
    assert second.start_ts == 20_000
