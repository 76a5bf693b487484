"""Real processes killed and restarted: what got a 200 is stored exactly once."""

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from obd2_dashboard.kit.db import make_engine
from obd2_dashboard.ops.migrations import upgrade_head
from obd2_dashboard.settings import async_database_url
from tests.conftest import REDIS_URL, SESSION_SECRET, _pg_url, create_pg_database, drop_pg_database
from tests.live.sse import next_event, sse_events
from tests.processes import RedisServer, free_port, seed_device, stack

pytestmark = pytest.mark.slow


@pytest.fixture
def pg_url() -> Iterator[str]:
    name = create_pg_database()
    url = _pg_url(name)
    upgrade_head(async_database_url(url))
    try:
        yield url
    finally:
        drop_pg_database(name)


def _env(pg_url: str, redis_url: str, prefix: str) -> dict[str, str]:
    return {
        "DATABASE_URL": pg_url,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": prefix,
        "SESSION_SECRET": SESSION_SECRET,
        "WORKER_CLAIM_IDLE_MS": "500",
        "WORKER_SWEEP_AGE_S": "1",
    }


async def _query(pg_url: str, sql: str) -> list[tuple[object, ...]]:
    engine = make_engine(async_database_url(pg_url))
    try:
        async with engine.connect() as connection:
            return [tuple(row) for row in await connection.execute(text(sql))]
    finally:
        await engine.dispose()


def _batch(seqs: range) -> dict[str, object]:
    now = int(time.time() * 1000)
    return {
        "samples": [
            {
                "seq": s,
                "ts": now - 600_000 + s * 10,
                "pid": "RPM" if s % 2 else "SPEED",
                "value": float(s % 97),
            }
            for s in seqs
        ]
    }


async def _send(client: httpx.AsyncClient, url: str, token: str, seqs: range) -> bool:
    try:
        response = await client.post(
            f"{url}/api/v1/ingest", json=_batch(seqs), headers={"Authorization": f"Bearer {token}"}
        )
    except httpx.HTTPError:
        return False
    return response.status_code == 200


async def test_kill9_api_mid_ingest_loses_nothing_acked(
    pg_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    _, token = await seed_device(pg_url)
    port = free_port()
    acked: set[int] = set()
    with stack(tmp_path, _env(pg_url, REDIS_URL, redis_prefix)) as procs:
        api, url = procs.serve(port)
        async with httpx.AsyncClient(timeout=5) as client:
            sender_done = asyncio.Event()

            async def sender() -> None:
                for start in range(0, 20_000, 200):
                    seqs = range(start, start + 200)
                    # An agent retries what was not acknowledged, whatever happened to it.
                    while not await _send(client, url, token, seqs):
                        await asyncio.sleep(0.1)
                    acked.update(seqs)
                sender_done.set()

            task = asyncio.create_task(sender())
            while len(acked) < 4_000:
                await asyncio.sleep(0.01)
            await asyncio.to_thread(api.kill9)
            killed_at = len(acked)
            await asyncio.sleep(0.5)
            await asyncio.to_thread(procs.serve, port)
            await asyncio.wait_for(task, 120)
    assert killed_at < 20_000
    rows = await _query(
        pg_url, "SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM samples"
    )
    assert rows == [(20_000, 20_000, 0, 19_999)]


async def test_kill9_worker_mid_batch_rollups_end_exact(
    pg_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    _, token = await seed_device(pg_url)
    with stack(tmp_path, _env(pg_url, REDIS_URL, redis_prefix)) as procs:
        _, url = procs.serve()
        worker = procs.worker()
        async with httpx.AsyncClient(timeout=10) as client:
            for start in range(0, 30_000, 500):
                if start == 10_000:
                    await asyncio.to_thread(worker.kill9)
                if start == 20_000:
                    procs.worker()
                assert await _send(client, url, token, range(start, start + 500))

        async def settled() -> bool:
            backlog = await _query(pg_url, "SELECT count(*) FROM ingest_outbox")
            return backlog == [(0,)]

        deadline = time.monotonic() + 60
        while not await settled():
            assert time.monotonic() < deadline, "worker never caught up"
            await asyncio.sleep(0.2)
    mismatches = await _query(
        pg_url,
        "WITH raw AS (SELECT vehicle_id, pid, ts - ts % 60000 AS b, count(*) AS c, "
        "min(value) AS lo, max(value) AS hi, avg(value) AS mean FROM samples "
        "GROUP BY vehicle_id, pid, ts - ts % 60000) SELECT raw.b FROM raw "
        "LEFT JOIN sample_rollups_1m r ON r.vehicle_id = raw.vehicle_id AND r.pid = raw.pid "
        "AND r.bucket_ts = raw.b WHERE r.count IS DISTINCT FROM raw.c OR r.min <> raw.lo "
        "OR r.max <> raw.hi OR abs(r.avg - raw.mean) > 1e-9",
    )
    assert mismatches == []


async def test_redis_restart_loses_no_acked_sample_and_live_recovers(
    pg_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    vehicle, token = await seed_device(pg_url, "live@example.com")
    redis = RedisServer(free_port(), tmp_path)
    redis.start()
    try:
        with stack(tmp_path, _env(pg_url, redis.url, redis_prefix)) as procs:
            _, url = procs.serve()
            procs.worker()
            async with httpx.AsyncClient(base_url=url, timeout=10) as client:
                login = await client.post(
                    "/api/v1/auth/login",
                    json={"email": "live@example.com", "password": "correct horse battery"},
                )
                assert login.status_code == 200
                stream_url = f"/api/v1/streams/vehicles/{vehicle}"
                async with client.stream("GET", stream_url) as response:
                    events = sse_events(response)
                    await next_event(events, "comment")
                    assert await _send(client, url, token, range(0, 10))
                    assert (await next_event(events, "sample")).json()["seq"] in range(10)

                    await asyncio.to_thread(redis.kill)
                    # Redis gone: ingest is still durable, health says which part is down.
                    assert await _send(client, url, token, range(10, 1010))
                    health = await client.get("/healthz")
                    assert health.status_code == 503
                    assert health.json()["redis"] == "error"
                    assert health.json()["db"] == "ok"

                    await asyncio.to_thread(redis.start)  # back, and empty
                    await asyncio.sleep(1.5)
                    assert await _send(client, url, token, range(1010, 1020))
                    seen: set[int] = set()
                    while not {1019} <= seen:
                        seen.add((await next_event(events, "sample", timeout=15)).json()["seq"])

                async def ready() -> bool:
                    return (await client.get("/readyz")).status_code == 200

                deadline = time.monotonic() + 30
                while not await ready():
                    assert time.monotonic() < deadline, "readiness never recovered"
                    await asyncio.sleep(0.2)

            deadline = time.monotonic() + 60
            while await _query(pg_url, "SELECT count(*) FROM ingest_outbox") != [(0,)]:
                assert time.monotonic() < deadline, "derived data never caught up"
                await asyncio.sleep(0.2)
    finally:
        redis.kill()
    assert await _query(pg_url, "SELECT count(*), count(DISTINCT seq) FROM samples") == [
        (1020, 1020)
    ]
