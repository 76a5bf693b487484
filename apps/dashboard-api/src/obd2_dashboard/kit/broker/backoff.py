"""The failure counters behind login and device-token backoff; a broker counts them atomically
(``Broker.reserve_attempt``)."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """A failure counter that, from its ``free_failures``-th failure on, makes the next attempt
    wait ``first_delay_s``, doubling with each further failure up to ``max_delay_s``. The count
    is forgotten ``forget_after_s`` after the current delay ends (or by ``forget``)."""

    name: str
    free_failures: int
    first_delay_s: float
    max_delay_s: float
    forget_after_s: int

    def delay_ms(self, failures: int) -> int:
        if failures < self.free_failures:
            return 0
        doublings = min(failures - self.free_failures, 40)
        return int(min(self.max_delay_s, self.first_delay_s * 2**doublings) * 1000)
