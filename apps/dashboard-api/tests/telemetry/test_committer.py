"""Group commit: batches that arrive together are stored by one transaction, each answered as
if it had been alone."""

import asyncio
import time
from collections.abc import Coroutine
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from obd2_dashboard.models import IngestOutbox, Sample
from obd2_dashboard.telemetry.committer import (
    GROUP_BATCHES,
    DeviceRejectedError,
    IngestBusyError,
    IngestCommitter,
)
from obd2_protocol import IngestResult
from obd2_protocol import Sample as WireSample
from tests.conftest import Backend, World


def _samples(first_seq: int, n: int, pid: str = "RPM") -> list[WireSample]:
    ts0 = int(time.time() * 1000) - 60_000
    return [
        WireSample(seq=first_seq + i, ts=ts0 + i * 10, pid=pid, value=float(i)) for i in range(n)
    ]


def _committer(world: World) -> IngestCommitter:
    committer: IngestCommitter = world.app.state.obd2.committer
    return committer


async def _stored(world: World) -> list[tuple[int, int]]:
    async with world.app.state.obd2.sessionmaker() as session:
        result = await session.execute(
            select(Sample.device_id, Sample.seq).order_by(Sample.device_id, Sample.seq)
        )
        return [(int(d), int(s)) for d, s in result]


def _groups() -> tuple[float, float]:
    """(batches, transactions) the committer has stored so far in this process."""
    (metric,) = GROUP_BATCHES.collect()
    found = {m.name: m.value for m in metric.samples}
    return found["obd2_ingest_group_batches_sum"], found["obd2_ingest_group_batches_count"]


async def test_concurrent_batches_share_a_transaction_and_get_their_own_answers(
    world: World,
) -> None:
    user = await world.user("owner@example.com")
    devices = [await world.device(await world.vehicle(user, f"Car {n}")) for n in range(4)]
    batches_before, transactions_before = _groups()
    committer = _committer(world)
    results = await asyncio.gather(
        *(
            committer.store(token, _samples(n * 100, 50), transport="http")
            for n in range(5)
            for _, token in devices
        )
    )
    assert results == [IngestResult(accepted=50, duplicates=0)] * 20
    batches, transactions = _groups()
    assert batches - batches_before == 20
    assert transactions - transactions_before == 1
    expected = sorted((d, n * 100 + i) for d, _ in devices for n in range(5) for i in range(50))
    assert await _stored(world) == expected
    async with world.app.state.obd2.sessionmaker() as session:
        outbox = (await session.execute(select(func.count()).select_from(IngestOutbox))).scalar()
    assert outbox == 4  # one row per vehicle, not per batch


async def test_overlapping_batches_of_one_device_in_one_group_store_each_seq_once(
    world: World,
) -> None:
    user = await world.user("owner@example.com")
    device_id, token = await world.device(await world.vehicle(user))
    committer = _committer(world)
    first, second, replay = await asyncio.gather(
        committer.store(token, _samples(0, 10), transport="http"),
        committer.store(token, _samples(5, 10), transport="http"),
        committer.store(token, _samples(0, 10), transport="ws"),
    )
    assert first == IngestResult(accepted=10, duplicates=0)
    assert second == IngestResult(accepted=5, duplicates=5)
    assert replay == IngestResult(accepted=0, duplicates=10)
    assert await _stored(world) == [(device_id, seq) for seq in range(15)]


async def test_a_rejected_token_fails_only_its_own_batch(world: World) -> None:
    user = await world.user("owner@example.com")
    device_id, token = await world.device(await world.vehicle(user))
    committer = _committer(world)
    stored, unknown = await asyncio.gather(
        committer.store(token, _samples(0, 3), transport="http"),
        committer.store("obd2d_" + "x" * 43, _samples(0, 3), transport="http"),
        return_exceptions=True,
    )
    assert stored == IngestResult(accepted=3, duplicates=0)
    assert isinstance(unknown, DeviceRejectedError)
    with pytest.raises(DeviceRejectedError):
        await committer.store("not a device token", _samples(0, 1), transport="http")
    assert await _stored(world) == [(device_id, seq) for seq in range(3)]


async def test_a_batch_the_database_refuses_fails_alone(world: World) -> None:
    user = await world.user("owner@example.com")
    devices = [await world.device(await world.vehicle(user, f"Car {n}")) for n in range(3)]
    refuse = {
        "sqlite": "CREATE TRIGGER refuse_666 BEFORE INSERT ON samples WHEN NEW.seq = 666 "
        "BEGIN SELECT RAISE(ABORT, 'seq 666 refused'); END",
        "postgresql": "CREATE FUNCTION refuse_666() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN IF NEW.seq = 666 THEN RAISE EXCEPTION 'seq 666 refused'; END IF; "
        "RETURN NEW; END $$; "
        "CREATE TRIGGER refuse_666 BEFORE INSERT ON samples "
        "FOR EACH ROW EXECUTE FUNCTION refuse_666()",
    }
    state = world.app.state.obd2
    dialect = state.engine.dialect.name
    async with state.engine.begin() as connection:
        for statement in refuse[dialect].split("; CREATE TRIGGER"):
            prefix = "" if statement.startswith("CREATE") else "CREATE TRIGGER"
            await connection.execute(text(prefix + statement))
    try:
        committer = _committer(world)
        good_a, bad, good_b = await asyncio.gather(
            committer.store(devices[0][1], _samples(0, 5), transport="http"),
            committer.store(devices[1][1], _samples(664, 5), transport="http"),
            committer.store(devices[2][1], _samples(0, 5), transport="http"),
            return_exceptions=True,
        )
    finally:
        async with state.engine.begin() as connection:
            await connection.execute(
                text("DROP TRIGGER refuse_666" + (" ON samples" if dialect == "postgresql" else ""))
            )
    assert good_a == good_b == IngestResult(accepted=5, duplicates=0)
    assert isinstance(bad, Exception)
    assert "seq 666 refused" in str(bad)
    assert await _stored(world) == sorted((devices[n][0], seq) for n in (0, 2) for seq in range(5))


async def test_a_full_queue_refuses_at_once_and_loses_nothing_queued(world: World) -> None:
    user = await world.user("owner@example.com")
    _, token = await world.device(await world.vehicle(user))
    committer = _committer(world)
    committer.max_queued_rows = 120
    results = await asyncio.gather(
        *(committer.store(token, _samples(n * 100, 50), transport="http") for n in range(3)),
        return_exceptions=True,
    )
    # Queued 50, then 100; a third 50 would make 150.
    assert results[:2] == [IngestResult(accepted=50, duplicates=0)] * 2
    assert isinstance(results[2], IngestBusyError)
    assert len(await _stored(world)) == 100
    # Once the queue has drained, batches are taken again.
    assert await committer.store(token, _samples(200, 50), transport="http") == IngestResult(
        accepted=50, duplicates=0
    )


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)  # a Postgres table lock
async def test_ingest_is_503_with_retry_after_while_the_database_holds_the_queue(
    world: World, client: httpx.AsyncClient, backend: Backend
) -> None:
    user = await world.user("owner@example.com")
    _, token = await world.device(await world.vehicle(user))
    _committer(world).max_queued_rows = 15
    auth = {"Authorization": f"Bearer {token}"}
    engine = world.app.state.obd2.engine

    def post(first_seq: int) -> Coroutine[Any, Any, httpx.Response]:
        samples = _samples(first_seq, 10)
        body = {
            "samples": [{"seq": s.seq, "ts": s.ts, "pid": s.pid, "value": s.value} for s in samples]
        }
        return client.post("/api/v1/ingest", json=body, headers=auth)

    async with engine.connect() as holder:
        await holder.execute(text("LOCK TABLE samples IN EXCLUSIVE MODE"))
        first = asyncio.create_task(post(0))
        async with engine.connect() as probe:
            # The first batch's transaction is waiting for the lock: it left the queue.
            waiting = text(
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())"
            )
            while not (await probe.execute(waiting)).scalar():
                await asyncio.sleep(0.05)
        second = asyncio.create_task(post(100))
        while _committer(world).queued_rows < 10:  # the second batch waits in the queue
            await asyncio.sleep(0.01)
        refused = await post(200)
        await holder.rollback()
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert "retry" in refused.json()["detail"]
    assert (await first).json() == {"accepted": 10, "duplicates": 0}
    assert (await second).json() == {"accepted": 10, "duplicates": 0}
