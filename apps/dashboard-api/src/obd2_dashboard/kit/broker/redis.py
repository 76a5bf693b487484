"""``RedisBroker``: the production ``Broker``, on Redis (streams, counters, one Lua script)."""

import time
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from obd2_dashboard.kit.broker.backoff import Backoff
from obd2_dashboard.kit.broker.base import (
    Broker,
    BrokerKind,
    BrokerUnavailableError,
    ClaimedEntry,
    GroupStats,
    StreamAppend,
    StreamEntry,
)


def _entries(raw: Any) -> list[StreamEntry]:
    # redis-py's stubs type stream replies loosely; this is their shape with decode_responses.
    return [(str(i), dict(f)) for i, f in raw or [] if f is not None]


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
