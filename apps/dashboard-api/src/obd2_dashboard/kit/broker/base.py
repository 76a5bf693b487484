"""What every broker offers (``Broker``), the values it passes and its one error.

Every key a broker touches carries its prefix, so several installs (or test runs) share one
Redis without seeing each other.
"""

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from obd2_dashboard.kit.broker.backoff import Backoff

BrokerKind = Literal["redis", "embedded"]
StreamEntry = tuple[str, dict[str, str]]


@dataclass(frozen=True, slots=True)
class ClaimedEntry:
    id: str
    fields: dict[str, str]
    deliveries: int


@dataclass(frozen=True, slots=True)
class GroupStats:
    length: int
    pending: int
    lag: int


@dataclass(frozen=True, slots=True)
class StreamAppend:
    stream: str
    fields: dict[str, str]
    maxlen: int
    max_age_ms: int | None = None


class BrokerUnavailableError(Exception):
    """The broker does not answer (a connection or timeout error, or a missing group)."""


class Broker(ABC):
    kind: BrokerKind

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    @abstractmethod
    async def ping(self) -> None:
        """Raises ``BrokerUnavailableError`` when the broker does not answer."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def get(self, name: str) -> str | None: ...

    @abstractmethod
    async def set(self, name: str, value: str) -> None: ...

    @abstractmethod
    async def hit(self, name: str, window_s: int) -> tuple[int, int]:
        """Counts one event in a fixed window; returns (events so far, seconds left in window)."""

    @abstractmethod
    async def count(self, name: str) -> tuple[int, int]:
        """Events counted so far in the window of ``hit`` and its seconds left (0, 0 if none)."""

    @abstractmethod
    async def forget(self, name: str) -> None: ...

    @abstractmethod
    async def reserve_attempt(self, counters: Sequence[Backoff]) -> float:
        """Counts an attempt as a failure on every counter, atomically, unless one of them is
        in its delay: then nothing is counted and the seconds left are returned (0.0: go on).
        An attempt that succeeds ``forget``s its counters."""

    # -- streams ---------------------------------------------------------------------------
    @abstractmethod
    async def xadd(
        self, stream: str, fields: dict[str, str], maxlen: int, *, max_age_ms: int | None = None
    ) -> str:
        """Appends an entry, trimming the stream to about ``maxlen`` entries and, with
        ``max_age_ms``, about that much time (entry ids are times); returns its id."""

    async def xadd_many(self, appends: Sequence[StreamAppend]) -> list[str]:
        """Several ``xadd`` calls, in order, in one round trip where the broker has them."""
        return [
            await self.xadd(a.stream, a.fields, a.maxlen, max_age_ms=a.max_age_ms) for a in appends
        ]

    @abstractmethod
    async def xread(
        self, stream: str, after_id: str, *, count: int, block_ms: int
    ) -> list[StreamEntry]:
        """Entries after ``after_id`` ("$": only new ones), waiting up to ``block_ms`` for one."""

    @abstractmethod
    async def xrange(self, stream: str, start_id: str, *, count: int) -> list[StreamEntry]:
        """Entries from ``start_id`` (inclusive) on."""

    @abstractmethod
    async def first_id(self, stream: str) -> str | None:
        """The oldest id still retained, or None when the stream is empty or missing."""

    @abstractmethod
    async def last_id(self, stream: str) -> str | None: ...

    @abstractmethod
    async def ensure_group(self, stream: str, group: str) -> bool:
        """Creates the consumer group (and stream) if missing; True when it was created."""

    @abstractmethod
    async def xreadgroup(
        self, stream: str, group: str, consumer: str, *, count: int, block_ms: int
    ) -> list[StreamEntry]: ...

    @abstractmethod
    async def xack(self, stream: str, group: str, ids: list[str]) -> int: ...

    @abstractmethod
    async def xautoclaim(
        self, stream: str, group: str, consumer: str, *, min_idle_ms: int, count: int
    ) -> list[ClaimedEntry]:
        """Takes over entries another consumer has held longer than ``min_idle_ms``."""

    @abstractmethod
    async def group_stats(self, stream: str, group: str) -> GroupStats | None: ...

    @abstractmethod
    async def xlen(self, stream: str) -> int: ...
