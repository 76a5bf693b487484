"""A batch whose derived data fails is retried a bounded number of times, then dead-lettered,
and never holds up another vehicle's rollups or the finishing of trips; history reads around
stored values no reading could have.

The poison goes straight into the database (as an old database holds it), not through ingest.
"""

import asyncio
import json
import math
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import text

from obd2_dashboard.kit.db import session_scope
from obd2_dashboard.settings import Settings
from obd2_dashboard.telemetry.repository import OutboxRepository, SampleRepository
from obd2_dashboard.telemetry.worker import RollupWorker, WorkerConfig
from tests.conftest import Backend, World, clean_env, run_cli
from tests.health.test_metrics import sample as metric

MINUTE = 60_000
# Long enough ago that a trip ending then is past the join gap (300 s) by the clock.
T0 = (int(time.time() * 1000) - 3_600_000) // MINUTE * MINUTE
POISON = 1e308
# The ordinary readings of the poisoned vehicle: in another quarter hour than the poison, whose
# quarter-hour rollup history leaves out whole where SQLite made it inf.
ORDINARY_AT = 20 * MINUTE


@dataclass(frozen=True, slots=True)
class Row:
    """A sample as the repository stores it, with no wire validation on the way."""

    seq: int
    ts: int
    pid: str
    value: float


@pytest.fixture(autouse=True)
def _the_test_runs_the_worker(settings: Settings) -> None:
    settings.EMBEDDED_WORKER = False


async def _store(
    app: FastAPI, device_id: int, vehicle_id: int, samples: list[tuple[int, int, str, float]]
) -> int:
    """Stores (seq, ts, pid, value) rows and their outbox row, as a committed batch would be."""
    async with session_scope(app.state.obd2.sessionmaker) as session:
        await SampleRepository(session).insert_new(
            device_id,
            vehicle_id,
            [Row(seq, ts, pid, value) for seq, ts, pid, value in samples],
        )
        buckets = {(pid, ts - ts % MINUTE) for _, ts, pid, _ in samples}
        return await OutboxRepository(session).add(vehicle_id, buckets)


async def _corrupt_outbox_row(app: FastAPI, vehicle_id: int) -> int:
    """Work that fails whatever the backend: a bucket list no worker can read."""
    async with session_scope(app.state.obd2.sessionmaker) as session:
        outbox_id = await OutboxRepository(session).add(vehicle_id, set())
        await session.execute(
            text("UPDATE ingest_outbox SET buckets = 'RPM:not-a-minute' WHERE id = :id"),
            {"id": outbox_id},
        )
        return outbox_id


async def _rows(app: FastAPI, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    async with app.state.obd2.sessionmaker() as session:
        return [tuple(row) for row in await session.execute(text(sql), params)]


async def _wait_for(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def _worker(app: FastAPI, **overrides: Any) -> RollupWorker:
    fast: dict[str, Any] = {
        "block_ms": 50,
        "sweep_age_s": 0,
        "sweep_interval_s": 0.05,
        "retry_backoff_s": 0,
        "max_attempts": 3,
    }
    config = WorkerConfig(consumer="dead-letter-test", **(fast | overrides))
    return RollupWorker(app.state.obd2.sessionmaker, app.state.obd2.broker, config)


async def _poisoned_world(world: World) -> dict[str, int]:
    """A healthy vehicle whose drive ended an hour ago, and a poisoned one whose batches come
    first in the outbox: two of 1e308 RPM readings, one whose bucket list is corrupt, and one
    of ordinary readings."""
    app = world.app
    owner = await world.user("owner@example.com")
    poisoned = await world.vehicle(owner, "poisoned")
    healthy = await world.vehicle(owner, "healthy")
    poisoned_device, _ = await world.device(poisoned)
    healthy_device, _ = await world.device(healthy)
    overflow = await _store(
        app,
        poisoned_device,
        poisoned,
        [(1, T0 + 1_000, "RPM", POISON), (2, T0 + 2_000, "RPM", POISON)]
        + [(3 + i, T0 + 3_000 + i * 1000, "RPM", 800.0) for i in range(3)],
    )
    corrupt = await _corrupt_outbox_row(app, poisoned)
    ordinary = await _store(
        app,
        poisoned_device,
        poisoned,
        [(100 + i, T0 + ORDINARY_AT + i * 1000, "RPM", 900.0) for i in range(30)],
    )
    drive = [
        (2 * i + k, T0 + i * 1000, pid, value)
        for i in range(120)
        for k, (pid, value) in enumerate((("RPM", 2000.0), ("SPEED", 60.0)))
    ]
    await _store(app, healthy_device, healthy, drive)
    return {
        "poisoned": poisoned,
        "healthy": healthy,
        "overflow": overflow,
        "corrupt": corrupt,
        "ordinary": ordinary,
    }


async def test_a_poison_batch_is_dead_lettered_and_holds_up_no_one(
    world: World, backend: Backend
) -> None:
    app = world.app
    ids = await _poisoned_world(world)
    stop = asyncio.Event()
    task = asyncio.create_task(_worker(app).run(stop))
    try:

        async def healthy_trip_finished() -> bool:
            rows = await _rows(
                app,
                "SELECT finished_at FROM trips WHERE vehicle_id = :v",
                v=ids["healthy"],
            )
            return len(rows) == 1 and rows[0][0] is not None

        async def outbox_empty() -> bool:
            return not await _rows(app, "SELECT id FROM ingest_outbox")

        # The healthy car's trip ends on time while the poison is still being retried…
        await _wait_for(healthy_trip_finished, "the healthy vehicle's trip to be finished")
        # …and the poison is given up on after its tries.
        await _wait_for(outbox_empty, "every batch done or dead-lettered")
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)

    # The healthy vehicle's rollups are current; so are the poisoned one's ordinary readings.
    assert await _rows(
        app,
        "SELECT pid, bucket_ts, count, avg FROM sample_rollups_1m WHERE vehicle_id = :v "
        "ORDER BY pid, bucket_ts",
        v=ids["healthy"],
    ) == [
        (pid, T0 + minute * MINUTE, 60, value)
        for pid, value in (("RPM", 2000.0), ("SPEED", 60.0))
        for minute in (0, 1)
    ]
    assert await _rows(
        app,
        "SELECT count, avg FROM sample_rollups_1m WHERE vehicle_id = :v AND bucket_ts = :b",
        v=ids["poisoned"],
        b=T0 + ORDINARY_AT,
    ) == [(30, 900.0)]

    letters = await _rows(
        app, "SELECT outbox_id, vehicle_id, attempts, error FROM dead_letters ORDER BY outbox_id"
    )
    # PostgreSQL cannot average 1e308s (SQLite makes inf of them, which history leaves out).
    expected = [ids["overflow"], ids["corrupt"]] if backend.name == "postgres" else [ids["corrupt"]]
    assert [letter[0] for letter in letters] == expected
    assert {letter[1] for letter in letters} == {ids["poisoned"]}
    assert {letter[2] for letter in letters} == {3}
    errors = {letter[0]: letter[3] for letter in letters}
    assert errors[ids["corrupt"]].startswith("ValueError: invalid literal for int()")
    if backend.name == "postgres":
        assert (
            errors[ids["overflow"]] == "NumericValueOutOfRangeError: value out of range: overflow"
        )

    metrics = (await world.client.get("/metrics")).text
    assert metric(metrics, "obd2_dead_letters") == len(expected)
    ready = await world.client.get("/readyz")
    assert ready.status_code == 200
    status = ready.json()["dead_letters"]
    assert status["count"] == len(expected)
    assert [entry["vehicle_id"] for entry in status["newest"]] == [ids["poisoned"]] * len(expected)
    # Public data: the kind of error, never the database's message (it can quote the value).
    assert {entry["error"] for entry in status["newest"]} == {
        error.split(":", 1)[0] for error in errors.values()
    }
    assert all(entry["at"] and entry["attempts"] == 3 for entry in status["newest"])


async def test_a_failing_batch_waits_out_its_retry_delay(world: World) -> None:
    app = world.app
    owner = await world.user("owner@example.com")
    vehicle = await world.vehicle(owner)
    corrupt = await _corrupt_outbox_row(app, vehicle)
    worker = _worker(app, retry_backoff_s=3600)
    assert await worker.sweep_once() == 1
    [(attempts, error, due)] = await _rows(
        app,
        "SELECT attempts, last_error, next_attempt_at FROM ingest_outbox WHERE id = :i",
        i=corrupt,
    )
    assert attempts == 1
    assert error.startswith("ValueError")
    assert due is not None
    # Not due for an hour: the sweep leaves it alone, and no try is counted.
    assert await worker.sweep_once() == 0
    assert await _rows(app, "SELECT attempts FROM dead_letters") == []
    assert await _rows(app, "SELECT attempts FROM ingest_outbox") == [(1,)]


async def test_history_of_a_poisoned_vehicle_answers(world: World) -> None:
    app = world.app
    ids = await _poisoned_world(world)
    # Whatever the worker makes of it (SQLite stores the rollup of 1e308s as inf).
    worker = _worker(app)
    for _ in range(3):
        await worker.sweep_once()
    user = await world.login("owner@example.com")
    url = f"/api/v1/vehicles/{ids['poisoned']}/samples"
    for span in (30 * MINUTE, 86_400_000):  # raw rows, then rollups
        response = await user.get(
            url, params={"pid": "RPM", "from": T0, "to": T0 + span, "max_points": 100}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        values = [v for _, v in body["points"]] + body["min"] + body["max"]
        assert values, body
        assert all(isinstance(v, float) and math.isfinite(v) and v < 1e15 for v in values), body
        # The ordinary readings are there (the raw tier also has the three beside the poison).
        assert 900.0 in body["max"]
    raw = (
        await user.get(url, params={"pid": "RPM", "from": T0, "to": T0 + MINUTE, "max_points": 2})
    ).json()
    assert raw["source"] == "raw"
    assert raw["count"] == [3]
    assert raw["points"] == [[T0 + 3_000, 800.0]]
    csv = await user.get(f"{url}.csv", params={"pid": "RPM", "from": T0, "to": T0 + MINUTE})
    assert csv.status_code == 200
    assert "1e+308" in csv.text  # the export is the raw rows, as stored


async def test_operators_list_retry_and_discard_dead_letters(
    world: World, backend: Backend, tmp_path: Path
) -> None:
    app = world.app
    owner = await world.user("owner@example.com")
    vehicle = await world.vehicle(owner)
    await _corrupt_outbox_row(app, vehicle)
    worker = _worker(app, max_attempts=1)
    assert await worker.sweep_once() == 1
    env = clean_env(DATABASE_URL=backend.database_url, DATA_DIR=str(tmp_path / "var"))

    async def cli(*args: str) -> subprocess.CompletedProcess[str]:
        # Off the event loop: the app's connections stay served meanwhile.
        return await asyncio.to_thread(run_cli, "dead-letters", *args, env=env, cwd=tmp_path)

    listed = await cli("--json")
    assert listed.returncode == 0, listed.stderr
    body = json.loads(listed.stdout)
    assert body["count"] == 1
    [letter] = body["newest"]
    assert (letter["vehicle_id"], letter["attempts"]) == (vehicle, 1)
    assert letter["error"].startswith("ValueError")
    text_listing = await cli()
    assert text_listing.returncode == 0
    assert text_listing.stdout.startswith(f"{letter['id']}\tvehicle {vehicle}\t")
    assert "1 in all" in text_listing.stderr

    retried = await cli("--retry", str(letter["id"]))
    assert retried.returncode == 0, retried.stderr
    assert await _rows(app, "SELECT count(*) FROM dead_letters") == [(0,)]
    assert await _rows(app, "SELECT vehicle_id, buckets, attempts FROM ingest_outbox") == [
        (vehicle, "RPM:not-a-minute", 0)
    ]
    # Still broken: tried again (at once, as its batch is old), and given up on again.
    assert await worker.sweep_once() == 1
    [(again, attempts)] = await _rows(app, "SELECT id, attempts FROM dead_letters")
    assert attempts == 1

    discarded = await cli("--discard", str(again))
    assert discarded.returncode == 0, discarded.stderr
    assert await _rows(app, "SELECT count(*) FROM dead_letters") == [(0,)]
    missing = await cli("--discard", str(again))
    assert missing.returncode == 1
    assert missing.stderr.strip() == f"obd2-dashboard: no dead letter {again}"
    both = await cli("--retry", "1", "--discard", "1")
    assert both.returncode == 2
