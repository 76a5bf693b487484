"""``EmbeddedBroker``: the ``Broker`` contract inside one process, so that the demo and small
installs need no Redis."""

import asyncio
import bisect
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from obd2_dashboard.kit.broker.backoff import Backoff
from obd2_dashboard.kit.broker.base import (
    Broker,
    BrokerKind,
    BrokerUnavailableError,
    ClaimedEntry,
    GroupStats,
    StreamEntry,
)
from obd2_dashboard.kit.broker.stream_ids import format_stream_id, parse_stream_id


@dataclass(slots=True)
class _Pending:
    consumer: str
    delivered_at: float
    deliveries: int


@dataclass(slots=True)
class _Group:
    last_delivered: tuple[int, int] = (0, 0)
    pending: dict[str, _Pending] = field(default_factory=dict)


@dataclass(slots=True)
class _Stream:
    ids: list[tuple[int, int]] = field(default_factory=list)
    entries: dict[tuple[int, int], dict[str, str]] = field(default_factory=dict)
    last: tuple[int, int] = (0, 0)
    groups: dict[str, _Group] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class EmbeddedBroker(Broker):
    kind: BrokerKind = "embedded"

    def __init__(self, prefix: str = "") -> None:
        super().__init__(prefix)
        self._values: dict[str, str] = {}
        self._windows: dict[str, tuple[int, float]] = {}
        # name → (failures, blocked until, forgotten at): monotonic times.
        self._backoffs: dict[str, tuple[int, float, float]] = {}
        self._streams: dict[str, _Stream] = {}
        self._lock = asyncio.Lock()

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def get(self, name: str) -> str | None:
        return self._values.get(self.key(name))

    async def set(self, name: str, value: str) -> None:
        self._values[self.key(name)] = value

    async def hit(self, name: str, window_s: int) -> tuple[int, int]:
        now = time.monotonic()
        key = self.key(name)
        async with self._lock:
            count, ends = self._windows.get(key, (0, now + window_s))
            if ends <= now:
                count, ends = 0, now + window_s
            count += 1
            self._windows[key] = (count, ends)
            if len(self._windows) > 100_000:
                self._windows = {k: v for k, v in self._windows.items() if v[1] > now}
        return count, max(1, int(ends - now + 0.999))

    async def count(self, name: str) -> tuple[int, int]:
        now = time.monotonic()
        count, ends = self._windows.get(self.key(name), (0, now))
        if ends <= now:
            return 0, 0
        return count, max(1, int(ends - now + 0.999))

    async def forget(self, name: str) -> None:
        self._windows.pop(self.key(name), None)
        self._values.pop(self.key(name), None)
        self._backoffs.pop(self.key(name), None)

    async def reserve_attempt(self, counters: Sequence[Backoff]) -> float:
        # No await between the check and the count: no other task runs in between.
        now = time.monotonic()
        states = []
        for counter in counters:
            failures, blocked_until, forgotten_at = self._backoffs.get(
                self.key(counter.name), (0, 0.0, 0.0)
            )
            if forgotten_at <= now:
                failures, blocked_until = 0, 0.0
            states.append(failures)
            if blocked_until > now:
                return blocked_until - now
        for counter, failures in zip(counters, states, strict=True):
            delay = counter.delay_ms(failures + 1) / 1000
            self._backoffs[self.key(counter.name)] = (
                failures + 1,
                now + delay,
                now + delay + counter.forget_after_s,
            )
        if len(self._backoffs) > 100_000:
            self._backoffs = {k: v for k, v in self._backoffs.items() if v[2] > now}
        return 0.0

    def _stream(self, name: str) -> _Stream:
        key = self.key(name)
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = _Stream()
        return stream

    async def xadd(
        self, stream: str, fields: dict[str, str], maxlen: int, *, max_age_ms: int | None = None
    ) -> str:
        s = self._stream(stream)
        now_ms = int(time.time() * 1000)
        new_id = (now_ms, 0) if now_ms > s.last[0] else (s.last[0], s.last[1] + 1)
        s.ids.append(new_id)
        s.entries[new_id] = dict(fields)
        s.last = new_id
        # Like MAXLEN ~: trim in steps rather than on every append.
        drop = len(s.ids) - maxlen if len(s.ids) > maxlen + max(16, maxlen // 10) else 0
        if max_age_ms is not None:
            drop = max(drop, bisect.bisect_left(s.ids, (now_ms - max_age_ms, 0)))
        if drop:
            for old in s.ids[:drop]:
                del s.entries[old]
            del s.ids[:drop]
        s.changed.set()
        s.changed = asyncio.Event()
        return format_stream_id(new_id)

    def _after(self, s: _Stream, after: tuple[int, int], count: int) -> list[StreamEntry]:
        start = bisect.bisect_right(s.ids, after)
        return [(format_stream_id(i), s.entries[i]) for i in s.ids[start : start + count]]

    async def xread(
        self, stream: str, after_id: str, *, count: int, block_ms: int
    ) -> list[StreamEntry]:
        s = self._stream(stream)
        after = s.last if after_id == "$" else parse_stream_id(after_id)
        found = self._after(s, after, count)
        if found or block_ms <= 0:
            return found
        waiter = s.changed
        try:
            await asyncio.wait_for(waiter.wait(), block_ms / 1000)
        except TimeoutError:
            return []
        return self._after(s, after, count)

    async def xrange(self, stream: str, start_id: str, *, count: int) -> list[StreamEntry]:
        s = self._stream(stream)
        start = bisect.bisect_left(s.ids, parse_stream_id(start_id))
        return [(format_stream_id(i), s.entries[i]) for i in s.ids[start : start + count]]

    async def first_id(self, stream: str) -> str | None:
        s = self._stream(stream)
        return format_stream_id(s.ids[0]) if s.ids else None

    async def last_id(self, stream: str) -> str | None:
        s = self._stream(stream)
        return format_stream_id(s.last) if s.last != (0, 0) else None

    async def ensure_group(self, stream: str, group: str) -> bool:
        s = self._stream(stream)
        if group in s.groups:
            return False
        s.groups[group] = _Group(last_delivered=s.last)
        return True

    async def xreadgroup(
        self, stream: str, group: str, consumer: str, *, count: int, block_ms: int
    ) -> list[StreamEntry]:
        s = self._stream(stream)
        g = s.groups.get(group)
        if g is None:
            raise BrokerUnavailableError(f"NOGROUP no consumer group {group!r} on {stream!r}")
        found = self._after(s, g.last_delivered, count)
        if not found and block_ms > 0:
            waiter = s.changed
            try:
                await asyncio.wait_for(waiter.wait(), block_ms / 1000)
            except TimeoutError:
                return []
            found = self._after(s, g.last_delivered, count)
        now = time.monotonic()
        for entry_id, _ in found:
            g.pending[entry_id] = _Pending(consumer, now, 1)
        if found:
            g.last_delivered = parse_stream_id(found[-1][0])
        return found

    async def xack(self, stream: str, group: str, ids: list[str]) -> int:
        g = self._stream(stream).groups.get(group)
        if g is None:
            return 0
        return sum(1 for i in ids if g.pending.pop(i, None) is not None)

    async def xautoclaim(
        self, stream: str, group: str, consumer: str, *, min_idle_ms: int, count: int
    ) -> list[ClaimedEntry]:
        s = self._stream(stream)
        g = s.groups.get(group)
        if g is None:
            return []
        now = time.monotonic()
        claimed: list[ClaimedEntry] = []
        for entry_id, p in sorted(g.pending.items(), key=lambda kv: parse_stream_id(kv[0])):
            if len(claimed) >= count:
                break
            if (now - p.delivered_at) * 1000 < min_idle_ms:
                continue
            fields = s.entries.get(parse_stream_id(entry_id))
            if fields is None:  # trimmed away while pending
                del g.pending[entry_id]
                continue
            p.consumer, p.delivered_at, p.deliveries = consumer, now, p.deliveries + 1
            claimed.append(ClaimedEntry(entry_id, fields, p.deliveries))
        return claimed

    async def xlen(self, stream: str) -> int:
        return len(self._stream(stream).ids)

    async def group_stats(self, stream: str, group: str) -> GroupStats | None:
        s = self._stream(stream)
        g = s.groups.get(group)
        if g is None:
            return None
        lag = len(s.ids) - bisect.bisect_right(s.ids, g.last_delivered)
        return GroupStats(length=len(s.ids), pending=len(g.pending), lag=lag)
