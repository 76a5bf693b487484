"""The broker contract, held by the embedded broker and by the Redis one alike."""

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from obd2_dashboard.kit.broker import Backoff, Broker, BrokerUnavailableError, make_broker
from tests.conftest import REDIS_URL, closed_port_url
from tests.processes import RedisServer, free_port


@pytest.fixture(params=["embedded", "redis"])
async def broker(request: pytest.FixtureRequest, redis_prefix: str) -> AsyncIterator[Broker]:
    made = make_broker(REDIS_URL if request.param == "redis" else None, redis_prefix)
    assert made.kind == request.param
    try:
        yield made
    finally:
        await made.close()


async def test_ping(broker: Broker) -> None:
    await broker.ping()


async def test_get_set(broker: Broker) -> None:
    assert await broker.get("k") is None
    await broker.set("k", "v\u00e9")
    assert await broker.get("k") == "v\u00e9"
    await broker.forget("k")
    assert await broker.get("k") is None


async def test_hit_counts_within_a_window(broker: Broker) -> None:
    assert await broker.count("attempts") == (0, 0)
    first = await broker.hit("attempts", 300)
    second = await broker.hit("attempts", 300)
    assert first[0] == 1
    assert second[0] == 2
    assert 1 <= second[1] <= 300
    count, left = await broker.count("attempts")
    assert count == 2
    assert 1 <= left <= 300
    await broker.forget("attempts")
    assert await broker.count("attempts") == (0, 0)


async def test_prefixes_keep_installs_apart(redis_prefix: str) -> None:
    one = make_broker(REDIS_URL, redis_prefix + "one:")
    two = make_broker(REDIS_URL, redis_prefix + "two:")
    try:
        await one.hit("shared", 60)
        await one.set("name", "one")
        assert await two.count("shared") == (0, 0)
        assert await two.get("name") is None
    finally:
        await one.close()
        await two.close()


async def test_a_redis_that_requires_a_password_gets_the_one_in_the_url(tmp_path: Path) -> None:
    # Production Redis requires a password (requirepass): REDIS_URL=redis://:PASSWORD@host/0.
    password = secrets.token_urlsafe(24)
    server = RedisServer(free_port(), tmp_path, password=password)
    server.start()
    try:
        broker = make_broker(server.url, "pw:")
        try:
            await broker.ping()
            await broker.set("k", "v")
            assert await broker.get("k") == "v"
        finally:
            await broker.close()
        wrong = server.url.replace(password, secrets.token_urlsafe(24))
        for url in (wrong, f"redis://127.0.0.1:{server.port}/0"):
            refused = make_broker(url, "pw:")
            try:
                with pytest.raises(BrokerUnavailableError):
                    await refused.ping()
            finally:
                await refused.close()
    finally:
        server.kill()


async def test_unreachable_redis_fails_ping_with_its_own_error() -> None:
    broker = make_broker(closed_port_url("redis"), "x:")
    try:
        with pytest.raises(BrokerUnavailableError, match=r"[Cc]onnect"):
            await broker.ping()
    finally:
        await broker.close()


async def test_streams_are_trimmed_by_age_as_well_as_by_length(broker: Broker) -> None:
    # Redis trims by age a whole node (100 entries) at a time: enough old entries to fill some.
    for i in range(300):
        await broker.xadd("aged", {"n": str(i)}, maxlen=10_000)
    await asyncio.sleep(0.2)
    newest = await broker.xadd("aged", {"n": "new"}, maxlen=10_000, max_age_ms=100)
    remaining = await broker.xrange("aged", "0-0", count=1_000)
    assert remaining[-1] == (newest, {"n": "new"})
    assert len(remaining) <= 100  # at most the node the newest entry shares with older ones
    await broker.xadd("kept", {"n": "1"}, maxlen=10_000)
    await broker.xadd("kept", {"n": "2"}, maxlen=10_000, max_age_ms=60_000)
    assert len(await broker.xrange("kept", "0-0", count=10)) == 2


def _backoff(name: str, free: int, first_s: float = 60.0) -> Backoff:
    return Backoff(
        name, free_failures=free, first_delay_s=first_s, max_delay_s=3600, forget_after_s=60
    )


async def test_reserve_attempt_lets_through_no_more_than_the_free_failures(
    broker: Broker,
) -> None:
    counter = _backoff("failures", free=5)
    waits = await asyncio.gather(*(broker.reserve_attempt([counter]) for _ in range(20)))
    assert sum(1 for w in waits if w == 0) == 5
    assert all(50 < w <= 60 for w in waits if w)
    await broker.forget("failures")
    assert await broker.reserve_attempt([counter]) == 0


async def test_reserve_attempt_delays_double_and_block_every_counter(broker: Broker) -> None:
    address, account = _backoff("address", free=1, first_s=0.2), _backoff("account", free=9)
    assert await broker.reserve_attempt([address, account]) == 0  # first failure: 0.2 s delay
    first_wait = await broker.reserve_attempt([address, account])
    assert 0 < first_wait <= 0.2
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while (await broker.reserve_attempt([address, account])) > 0:  # counted once let through
        assert loop.time() < deadline, "the first delay never ended"
        await asyncio.sleep(0.05)
    second_wait = await broker.reserve_attempt([address])
    assert 0.2 < second_wait <= 0.4  # doubled
    # A counter in its delay refuses the attempt on every counter, and counts it on none.
    assert await broker.reserve_attempt([account, address]) > 0
    assert await broker.reserve_attempt([account]) == 0  # account: 3rd failure of 9 free
