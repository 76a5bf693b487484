import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from obd2_dashboard.app import create_app
from obd2_dashboard.kit.db import make_engine, make_sessionmaker, session_scope, utcnow
from obd2_dashboard.ops.redis_bootstrap import bootstrap
from obd2_dashboard.settings import Settings, async_database_url
from obd2_dashboard.telemetry.repository import OutboxRepository, RollupRepository
from obd2_dashboard.telemetry.streams import DEADLETTER_STREAM, WORK_GROUP, WORK_STREAM
from obd2_dashboard.telemetry.worker import RollupWorker, WorkerConfig, process_outbox
from tests.conftest import World, _empty_tables, closed_port_url
from tests.telemetry.helpers import rollups_match_raw


@pytest.fixture
async def quiet_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The app without its in-process worker, so the test drives the worker itself."""
    settings.EMBEDDED_WORKER = False
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        await _empty_tables(application)
        await bootstrap(application.state.obd2.broker)
        yield application


async def _ingest_batches(app: FastAPI, batches: int) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        world = World(app, client)
        user = await world.user("worker@example.com")
        vehicle = await world.vehicle(user)
        _, token = await world.device(vehicle)
        t0 = int(time.time() * 1000) - 3_600_000
        for b in range(batches):
            samples = [
                {"seq": b * 100 + i, "ts": t0 + b * 20_000 + i * 200, "pid": pid, "value": i * 1.5}
                for i in range(50)
                for pid in ("RPM",)
            ] + [
                {
                    "seq": b * 100 + 50 + i,
                    "ts": t0 + b * 20_000 + i * 200,
                    "pid": "SPEED",
                    "value": i,
                }
                for i in range(50)
            ]
            response = await client.post(
                "/api/v1/ingest",
                json={"samples": samples},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert response.status_code == 200


def _worker(app: FastAPI, consumer: str, **overrides: float) -> RollupWorker:
    config = WorkerConfig(consumer=consumer, block_ms=100, **overrides)  # type: ignore[arg-type]
    return RollupWorker(app.state.obd2.sessionmaker, app.state.obd2.broker, config)


async def _outbox(app: FastAPI) -> int:
    async with app.state.obd2.sessionmaker() as session:
        return await OutboxRepository(session).count()


async def test_worker_turns_stream_entries_into_exact_rollups(quiet_app: FastAPI) -> None:
    await _ingest_batches(quiet_app, 6)
    worker = _worker(quiet_app, "w1")
    assert await worker.consume_once() == 6
    assert await _outbox(quiet_app) == 0
    assert await rollups_match_raw(quiet_app) == []
    stats = await quiet_app.state.obd2.broker.group_stats(WORK_STREAM, WORK_GROUP)
    assert stats is not None
    assert stats.pending == 0
    assert stats.lag == 0
    # Delivered again (at least once): recomputation leaves the rollups as they were.
    async with session_scope(quiet_app.state.obd2.sessionmaker) as session:
        assert await process_outbox(session, [1, 2, 3]) == 0
    assert await rollups_match_raw(quiet_app) == []


async def test_entries_of_a_dead_consumer_are_claimed(quiet_app: FastAPI) -> None:
    await _ingest_batches(quiet_app, 3)
    broker = quiet_app.state.obd2.broker
    taken = await broker.xreadgroup(WORK_STREAM, WORK_GROUP, "dead", count=10, block_ms=100)
    assert len(taken) == 3  # read, never acknowledged: the consumer "died"
    survivor = _worker(quiet_app, "alive", claim_idle_ms=0)
    assert await survivor.consume_once() == 3
    assert await rollups_match_raw(quiet_app) == []
    stats = await broker.group_stats(WORK_STREAM, WORK_GROUP)
    assert stats is not None
    assert stats.pending == 0


async def test_a_failing_batch_is_recorded_and_its_entry_acknowledged(quiet_app: FastAPI) -> None:
    broker = quiet_app.state.obd2.broker
    async with session_scope(quiet_app.state.obd2.sessionmaker) as session:
        broken = await OutboxRepository(session).add(1, set())
        row = (await OutboxRepository(session).get_many([broken]))[0]
        row.buckets = "RPM:not-a-minute"
    await broker.xadd(WORK_STREAM, {"outbox": str(broken)}, maxlen=100)
    await broker.xadd(WORK_STREAM, {"garbage": "1"}, maxlen=100)
    worker = _worker(quiet_app, "w", claim_idle_ms=0, max_deliveries=2)
    assert await worker.consume_once() == 1
    dead = await broker.xrange(DEADLETTER_STREAM, "0-0", count=10)
    assert [fields["reason"] for _, fields in dead] == ["malformed entry"]
    # The outbox row is the record of the failure (the sweep retries it): nothing is pending.
    stats = await broker.group_stats(WORK_STREAM, WORK_GROUP)
    assert stats is not None
    assert stats.pending == 0
    async with quiet_app.state.obd2.sessionmaker() as session:
        [row] = await OutboxRepository(session).get_many([broken])
    assert row.attempts == 1
    assert row.last_error is not None
    assert row.last_error.startswith("ValueError: invalid literal for int()")


async def test_entries_kept_from_an_unreachable_database_go_to_the_dead_letter_stream(
    quiet_app: FastAPI,
) -> None:
    await _ingest_batches(quiet_app, 1)
    broker = quiet_app.state.obd2.broker
    engine = make_engine(async_database_url(closed_port_url("postgresql")))
    try:
        config = WorkerConfig(consumer="cut-off", block_ms=100, claim_idle_ms=0, max_deliveries=2)
        worker = RollupWorker(make_sessionmaker(engine), broker, config)
        for _ in range(2):
            # No batch is to blame: nothing is counted, the entry stays pending.
            with pytest.raises(OSError, match=r"[Cc]onnect"):
                await worker.consume_once()
        assert await worker.consume_once() == 0  # a third delivery: given up on
    finally:
        await engine.dispose()
    dead = await broker.xrange(DEADLETTER_STREAM, "0-0", count=10)
    assert [fields["reason"] for _, fields in dead] == ["3 deliveries"]
    async with quiet_app.state.obd2.sessionmaker() as session:
        [row] = await OutboxRepository(session).older_than(utcnow(), 10)
    assert (row.attempts, row.last_error) == (0, None)  # the sweep does its work


async def test_sweep_does_the_work_the_stream_never_announced(quiet_app: FastAPI) -> None:
    await _ingest_batches(quiet_app, 2)
    # As if Redis had lost the entries: only the outbox knows.
    broker = quiet_app.state.obd2.broker
    await broker.xreadgroup(WORK_STREAM, WORK_GROUP, "x", count=10, block_ms=100)
    await broker.xack(
        WORK_STREAM, WORK_GROUP, [e for e, _ in await broker.xrange(WORK_STREAM, "0-0", count=10)]
    )
    worker = _worker(quiet_app, "sweeper", sweep_age_s=0)
    assert await worker.sweep_once() == 2
    assert await _outbox(quiet_app) == 0
    assert await rollups_match_raw(quiet_app) == []


async def test_worker_run_loop_stops_cleanly(quiet_app: FastAPI) -> None:
    await _ingest_batches(quiet_app, 2)
    stop = asyncio.Event()
    task = asyncio.create_task(_worker(quiet_app, "loop").run(stop))
    for _ in range(100):
        if await _outbox(quiet_app) == 0:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert await _outbox(quiet_app) == 0
    assert await rollups_match_raw(quiet_app) == []


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_rollups_are_recomputed_under_the_vehicle_lock_from_rows_committed_before_it(
    quiet_app: FastAPI,
) -> None:
    # Two workers recomputing one minute must not end with the older figures: the one that
    # waited for the lock reads raw rows committed while it waited.
    minute = (int(time.time() * 1000) // 60_000 - 30) * 60_000
    transport = httpx.ASGITransport(app=quiet_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        world = World(quiet_app, client)
        vehicle = await world.vehicle(await world.user("lock@example.com"))
        _, token = await world.device(vehicle)

        async def ingest(first_seq: int) -> None:
            samples = [
                {"seq": first_seq + i, "ts": minute + first_seq + i, "pid": "RPM", "value": i}
                for i in range(50)
            ]
            response = await client.post(
                "/api/v1/ingest",
                json={"samples": samples},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert response.status_code == 200

        await ingest(0)
        sessionmaker = quiet_app.state.obd2.sessionmaker
        async with sessionmaker() as holder, holder.begin():
            await RollupRepository(holder).lock_vehicle(vehicle)

            async def first_worker() -> None:
                async with session_scope(sessionmaker) as session:
                    assert await process_outbox(session, [1]) == 1

            waiting = asyncio.create_task(first_worker())
            await asyncio.sleep(0.5)
            assert not waiting.done(), "the recomputation did not wait for the vehicle's lock"
            await ingest(1000)  # committed while the first worker waits
        await asyncio.wait_for(waiting, 10)
    async with sessionmaker() as session:
        count = await session.execute(
            text("SELECT count FROM sample_rollups_1m WHERE vehicle_id = :v AND bucket_ts = :m"),
            {"v": vehicle, "m": minute},
        )
        assert count.scalar_one() == 100
