"""The message broker behind live fan-out, background work and shared counters.

``RedisBroker`` is the production one; ``EmbeddedBroker`` keeps the same contract inside one
process so that the demo and small installs need no Redis. Every key a broker touches carries
its prefix, so several installs (or test runs) share one Redis without seeing each other.
"""

import asyncio
import time
from abc import ABC, abstractmethod
from typing import Literal

from redis.asyncio import Redis

BrokerKind = Literal["redis", "embedded"]


class BrokerUnavailableError(Exception):
    pass


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


class EmbeddedBroker(Broker):
    kind: BrokerKind = "embedded"

    def __init__(self, prefix: str = "") -> None:
        super().__init__(prefix)
        self._values: dict[str, str] = {}
        self._windows: dict[str, tuple[int, float]] = {}
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
        )

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


def make_broker(url: str | None, prefix: str) -> Broker:
    if url is None:
        return EmbeddedBroker(prefix)
    return RedisBroker(url, prefix)
