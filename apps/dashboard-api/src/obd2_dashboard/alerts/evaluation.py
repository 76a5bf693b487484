"""Threshold episodes found in time-ordered samples: the pure part of alert evaluation.

An episode begins at the first sample that crosses the threshold, lasts while the value stays on
the far side of the clear threshold (hysteresis), and fires once it has lasted ``duration``. A
gap in the samples longer than ``max_gap_ms`` ends it: nothing is known about the value there.
Because the input is every raw row of a time window, sorted by sample time, the result is the
same whatever order the samples arrived in and however often the window is evaluated.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

PARKED_PIDS = ("SPEED", "RPM")
# A SPEED or RPM reading older than this says nothing about now: the car is taken as parked.
PARKED_FRESH_MS = 60_000

Op = Literal["above", "below"]


@dataclass(frozen=True, slots=True)
class Condition:
    pid: str
    op: Op
    threshold: float
    clear_threshold: float
    duration_ms: int
    while_parked: bool = False
    max_gap_ms: int = 120_000

    def enters(self, value: float) -> bool:
        return value > self.threshold if self.op == "above" else value < self.threshold

    def holds(self, value: float) -> bool:
        return value > self.clear_threshold if self.op == "above" else value < self.clear_threshold

    def worse(self, a: float, b: float) -> float:
        return max(a, b) if self.op == "above" else min(a, b)


@dataclass(slots=True)
class Episode:
    start_ts: int
    # First sample at which the condition had held for the duration; None: not long enough.
    fire_ts: int | None
    fire_value: float | None
    # First sample at which it no longer held (or the last one before a gap); None: it still
    # holds at the end of the rows.
    end_ts: int | None
    peak: float

    @property
    def fired(self) -> bool:
        return self.fire_ts is not None


Row = tuple[int, str, float]


class _Parked:
    def __init__(self) -> None:
        self.latest: dict[str, tuple[int, float]] = {}

    def see(self, ts: int, pid: str, value: float) -> None:
        self.latest[pid] = (ts, value)

    def at(self, ts: int) -> bool:
        for pid in PARKED_PIDS:
            seen = self.latest.get(pid)
            if seen is not None and ts - seen[0] <= PARKED_FRESH_MS and seen[1] > 0:
                return False
        return True


def find_episodes(rows: Iterable[Row], condition: Condition) -> list[Episode]:
    """Episodes of ``condition`` in ``rows`` (sorted by time; other PIDs give the parked state)."""
    episodes: list[Episode] = []
    parked = _Parked()
    current: Episode | None = None
    last_ts: int | None = None
    ordered = list(rows)
    for index, (ts, pid, value) in enumerate(ordered):
        if pid in PARKED_PIDS:
            parked.see(ts, pid, value)
        if pid != condition.pid:
            continue
        # SPEED and RPM read at the same moment count, whichever sorts first.
        later = index + 1
        while later < len(ordered) and ordered[later][0] == ts:
            if ordered[later][1] in PARKED_PIDS:
                parked.see(*ordered[later])
            later += 1
        allowed = not condition.while_parked or parked.at(ts)
        if current is not None and last_ts is not None and ts - last_ts > condition.max_gap_ms:
            current.end_ts = last_ts
            episodes.append(current)
            current = None
        if current is None:
            if allowed and condition.enters(value):
                current = Episode(ts, None, None, None, value)
        elif allowed and condition.holds(value):
            current.peak = condition.worse(current.peak, value)
        else:
            current.end_ts = ts
            episodes.append(current)
            current = None
        if (
            current is not None
            and current.fire_ts is None
            and ts - current.start_ts >= condition.duration_ms
        ):
            current.fire_ts, current.fire_value = ts, value
        last_ts = ts
    if current is not None:
        episodes.append(current)
    return episodes
