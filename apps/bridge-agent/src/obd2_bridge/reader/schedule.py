# SPDX-License-Identifier: GPL-2.0-or-later
"""Which PIDs to ask for next, and how to pack them into requests.

Every cycle asks for each due fast PID; due slow PIDs fill the free places of the fast requests
and may add at most one request of their own, so a slow PID never starves a fast one and is
still read at its interval. One PID per request (old K-line cars), every due slow PID gets its
request: they keep their configured rate and the fast PIDs share what is left. A PID the ECU
stopped answering while it answers others is backed off on its own retry schedule.
"""

from dataclasses import dataclass

MAX_PER_REQUEST = 6
# A dead PID is asked again after 5 s, then twice as late each time, at most every 5 minutes.
DEAD_RETRY_MIN_S = 5.0
DEAD_RETRY_MAX_S = 300.0


@dataclass(slots=True)
class PidSlot:
    name: str
    interval_s: float
    slow: bool
    next_due: float = 0.0
    multi_misses: int = 0
    single_only: bool = False
    dead_misses: int = 0

    def due(self, now: float) -> bool:
        return self.next_due <= now

    def done(self, now: float) -> None:
        # Fixed rate while less than an interval late (a slow cycle does not stretch every
        # period after it); later than that, the period restarts from now (no burst).
        if now - self.next_due < self.interval_s:
            self.next_due += self.interval_s
        else:
            self.next_due = now + self.interval_s
        self.dead_misses = 0

    def missed(self, now: float) -> float:
        """The ECU answered others but not this PID, asked alone: retry later and later."""
        self.dead_misses += 1
        retry = min(DEAD_RETRY_MAX_S, DEAD_RETRY_MIN_S * 2.0 ** (self.dead_misses - 1))
        self.next_due = now + retry
        return retry


class Schedule:
    def __init__(
        self,
        fast: list[str],
        slow: list[str],
        *,
        fast_interval_s: float = 0.0,
        slow_interval_s: float = 1.0,
    ) -> None:
        self.slots = [PidSlot(p, fast_interval_s, False) for p in fast]
        self.slots += [PidSlot(p, slow_interval_s, True) for p in slow if p not in fast]
        self._by_name = {s.name: s for s in self.slots}

    def restrict(self, supported: set[str]) -> list[str]:
        """Keep only what the car supports; returns the PIDs dropped."""
        dropped = [s.name for s in self.slots if s.name not in supported]
        self.slots = [s for s in self.slots if s.name in supported]
        self._by_name = {s.name: s for s in self.slots}
        return dropped

    def slot(self, name: str) -> PidSlot:
        return self._by_name[name]

    def next_due_in(self, now: float) -> float:
        if not self.slots:
            return 1.0
        return max(0.0, min(s.next_due for s in self.slots) - now)

    def plan(self, now: float, *, multi: bool) -> list[list[str]]:
        """The requests of one cycle, each a list of PID names (one name without multi-PID)."""
        fast = [s for s in self.slots if not s.slow and s.due(now)]
        slow = sorted((s for s in self.slots if s.slow and s.due(now)), key=lambda s: s.next_due)
        if not multi:
            return [[s.name] for s in fast] + [[s.name] for s in slow]
        fast_multi = [s.name for s in fast if not s.single_only]
        slow_multi = [s.name for s in slow if not s.single_only]
        fast_groups = -(-len(fast_multi) // MAX_PER_REQUEST)
        packed = fast_multi + slow_multi
        groups = [packed[i : i + MAX_PER_REQUEST] for i in range(0, len(packed), MAX_PER_REQUEST)]
        groups = groups[: fast_groups + (1 if slow_multi else 0)]
        requests = groups + [[s.name] for s in fast if s.single_only]
        slow_singles = [s.name for s in slow if s.single_only]
        if slow_singles:
            requests.append(slow_singles[:1])
        return requests
