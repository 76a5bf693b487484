"""The message broker behind live fan-out, background work and shared counters.

``RedisBroker`` is the production one; ``EmbeddedBroker`` keeps the same contract inside one
process so that the demo and small installs need no Redis. Every key a broker touches carries
its prefix, so several installs (or test runs) share one Redis without seeing each other.
"""

import asyncio
import bisect
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

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


# Redis stream ids are two unsigned 64-bit numbers.
MAX_STREAM_ID_PART = 2**64 - 1


def parse_stream_id(value: str) -> tuple[int, int]:
    """``"1700000000000-3"`` → ``(1700000000000, 3)``; ValueError for anything else."""
    ms, sep, seq = value.partition("-")
    # isascii: str.isdigit() also takes "²", which int() refuses.
    digits = ms.isascii() and ms.isdigit() and (not sep or (seq.isascii() and seq.isdigit()))
    if not digits or len(value) > 41:
        raise ValueError(f"not a stream id: {value!r}")
    parts = int(ms), int(seq) if sep else 0
    if max(parts) > MAX_STREAM_ID_PART:
        raise ValueError(f"not a stream id: {value!r}")
    return parts


def format_stream_id(parts: tuple[int, int]) -> str:
    return f"{parts[0]}-{parts[1]}"


def _entries(raw: Any) -> list[StreamEntry]:
    # redis-py's stubs type stream replies loosely; this is their shape with decode_responses.
    return [(str(i), dict(f)) for i, f in raw or [] if f is not None]


@dataclass(frozen=True, slots=True)
class StreamAppend:
    stream: str
    fields: dict[str, str]
    maxlen: int
    max_age_ms: int | None = None


class BrokerUnavailableError(Exception):
    pass


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


# Checks every counter, and only when none is in a delay counts the attempt on all of them: one
# script, so concurrent attempts cannot all pass the check before any of them is counted.
# KEYS: the counters; ARGV: per key free_failures, first_delay_ms, max_delay_ms, forget_ms.
_RESERVE_ATTEMPT = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local wait = 0
for i, key in ipairs(KEYS) do
  local blocked_until = tonumber(redis.call('HGET', key, 'until') or '0')
  if blocked_until - now_ms > wait then wait = blocked_until - now_ms end
end
if wait > 0 then return wait end
for i, key in ipairs(KEYS) do
  local base = (i - 1) * 4
  local free = tonumber(ARGV[base + 1])
  local first = tonumber(ARGV[base + 2])
  local cap = tonumber(ARGV[base + 3])
  local forget = tonumber(ARGV[base + 4])
  local failures = redis.call('HINCRBY', key, 'failures', 1)
  local delay = 0
  if failures >= free then
    delay = math.floor(math.min(cap, first * 2 ^ math.min(failures - free, 40)))
    redis.call('HSET', key, 'until', now_ms + delay)
  end
  redis.call('PEXPIRE', key, math.floor(forget + delay))
end
return 0
"""


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


class RedisBroker(Broker):
    kind: BrokerKind = "redis"

    def __init__(self, url: str, prefix: str) -> None:
        super().__init__(prefix)
        self.redis: Redis = Redis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=2,
            socket_timeout=5,
            health_check_interval=15,
            # A pooled connection that died with a Redis restart fails once; a fresh one works.
            retry=Retry(NoBackoff(), 2),
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
        )
        self._reserve_attempt = self.redis.register_script(_RESERVE_ATTEMPT)

    async def ping(self) -> None:
        try:
            await self.redis.ping()
        except Exception as exc:
            raise BrokerUnavailableError(str(exc) or type(exc).__name__) from exc

    async def close(self) -> None:
        await self.redis.aclose()

    async def get(self, name: str) -> str | None:
        value = await self.redis.get(self.key(name))
        return None if value is None else str(value)

    async def set(self, name: str, value: str) -> None:
        await self.redis.set(self.key(name), value)

    async def hit(self, name: str, window_s: int) -> tuple[int, int]:
        key = self.key(name)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, window_s, nx=True)
            pipe.ttl(key)
            count, _, ttl = await pipe.execute()
        return int(count), max(1, int(ttl))

    async def count(self, name: str) -> tuple[int, int]:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.get(self.key(name))
            pipe.ttl(self.key(name))
            value, ttl = await pipe.execute()
        if value is None:
            return 0, 0
        return int(value), max(1, int(ttl))

    async def forget(self, name: str) -> None:
        await self.redis.delete(self.key(name))

    async def reserve_attempt(self, counters: Sequence[Backoff]) -> float:
        if not counters:
            return 0.0
        arguments: list[int] = []
        for c in counters:
            first_ms, max_ms = int(c.first_delay_s * 1000), int(c.max_delay_s * 1000)
            arguments += [c.free_failures, first_ms, max_ms, c.forget_after_s * 1000]
        wait_ms = await self._reserve_attempt(
            keys=[self.key(c.name) for c in counters], args=arguments
        )
        return int(wait_ms) / 1000

    async def xadd(
        self, stream: str, fields: dict[str, str], maxlen: int, *, max_age_ms: int | None = None
    ) -> str:
        key = self.key(stream)
        if max_age_ms is None:
            entry_id = await self.redis.xadd(
                key,
                fields,  # type: ignore[arg-type]
                maxlen=maxlen,
                approximate=True,
            )
            return str(entry_id)
        # One XADD cannot trim by both length and age: the age trim follows in the same round
        # trip. Approximate, so Redis drops whole nodes (entries outlive the age by a node).
        oldest = f"{int(time.time() * 1000) - max_age_ms}-0"
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xadd(key, fields, maxlen=maxlen, approximate=True)  # type: ignore[arg-type]
            pipe.xtrim(key, minid=oldest, approximate=True)
            entry_id, _ = await pipe.execute()
        return str(entry_id)

    async def xadd_many(self, appends: Sequence[StreamAppend]) -> list[str]:
        if not appends:
            return []
        now_ms = int(time.time() * 1000)
        async with self.redis.pipeline(transaction=False) as pipe:
            for a in appends:
                key = self.key(a.stream)
                pipe.xadd(key, a.fields, maxlen=a.maxlen, approximate=True)  # type: ignore[arg-type]
                if a.max_age_ms is not None:
                    pipe.xtrim(key, minid=f"{now_ms - a.max_age_ms}-0", approximate=True)
            replies = await pipe.execute()
        ids: list[str] = []
        position = 0
        for a in appends:
            ids.append(str(replies[position]))
            position += 1 if a.max_age_ms is None else 2
        return ids

    async def xread(
        self, stream: str, after_id: str, *, count: int, block_ms: int
    ) -> list[StreamEntry]:
        result: Any = await self.redis.xread(
            {self.key(stream): after_id}, count=count, block=block_ms or None
        )
        return [e for _, entries in result or [] for e in _entries(entries)]

    async def xrange(self, stream: str, start_id: str, *, count: int) -> list[StreamEntry]:
        return _entries(await self.redis.xrange(self.key(stream), min=start_id, count=count))

    async def first_id(self, stream: str) -> str | None:
        result = await self.redis.xrange(self.key(stream), count=1)
        return str(result[0][0]) if result else None

    async def last_id(self, stream: str) -> str | None:
        result = await self.redis.xrevrange(self.key(stream), count=1)
        return str(result[0][0]) if result else None

    async def ensure_group(self, stream: str, group: str) -> bool:
        try:
            await self.redis.xgroup_create(self.key(stream), group, id="$", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" in str(exc):
                return False
            raise
        return True

    async def xreadgroup(
        self, stream: str, group: str, consumer: str, *, count: int, block_ms: int
    ) -> list[StreamEntry]:
        result: Any = await self.redis.xreadgroup(
            group, consumer, {self.key(stream): ">"}, count=count, block=block_ms or None
        )
        return [e for _, entries in result or [] for e in _entries(entries)]

    async def xack(self, stream: str, group: str, ids: list[str]) -> int:
        if not ids:
            return 0
        return int(await self.redis.xack(self.key(stream), group, *ids))

    async def xautoclaim(
        self, stream: str, group: str, consumer: str, *, min_idle_ms: int, count: int
    ) -> list[ClaimedEntry]:
        key = self.key(stream)
        result: Any = await self.redis.xautoclaim(
            key, group, consumer, min_idle_time=min_idle_ms, start_id="0-0", count=count
        )
        entries = _entries(result[1])
        if not entries:
            return []
        details: Any = await self.redis.xpending_range(
            key, group, min=entries[0][0], max=entries[-1][0], count=len(entries) * 2
        )
        deliveries = {str(d["message_id"]): int(d["times_delivered"]) for d in details}
        return [ClaimedEntry(i, f, deliveries.get(i, 1)) for i, f in entries]

    async def xlen(self, stream: str) -> int:
        return int(await self.redis.xlen(self.key(stream)))

    async def group_stats(self, stream: str, group: str) -> GroupStats | None:
        key = self.key(stream)
        try:
            groups = await self.redis.xinfo_groups(key)
        except ResponseError:
            return None
        for info in groups:
            if info["name"] == group:
                length = int(await self.redis.xlen(key))
                lag = info.get("lag")
                return GroupStats(
                    length=length,
                    pending=int(info["pending"]),
                    lag=int(lag) if lag is not None else length,
                )
        return None


def make_broker(url: str | None, prefix: str) -> Broker:
    if url is None:
        return EmbeddedBroker(prefix)
    return RedisBroker(url, prefix)


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
