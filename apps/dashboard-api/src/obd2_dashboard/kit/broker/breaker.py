"""A circuit breaker for callers that would rather skip the broker than wait on it."""

import time


class Breaker:
    """Skips a failing broker for a moment instead of making every caller wait on it."""

    def __init__(self, open_s: float = 1.0) -> None:
        self.open_s = open_s
        self._open_until = 0.0

    @property
    def is_open(self) -> bool:
        return time.monotonic() < self._open_until

    def trip(self) -> None:
        self._open_until = time.monotonic() + self.open_s
