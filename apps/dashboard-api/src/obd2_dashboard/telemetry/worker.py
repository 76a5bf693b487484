"""The persistence worker: turns stored batches into per-minute rollups and trips.

Work arrives on a consumer-group stream (one entry per stored batch, naming its outbox row).
Delivery is at least once, so processing recomputes whole minutes from raw rows and is
idempotent. Entries left pending by a dead consumer are claimed after ``claim_idle_ms``; an
entry that keeps crashing its consumer goes to a dead-letter stream. A sweep of the outbox table
does the work of any batch whose stream entry never arrived (Redis down or restarted empty).

Each vehicle's batches are done in a transaction of their own, so one vehicle's failure never
rolls back or holds up another's work. A batch that fails (for any reason but the database not
answering) is tried again after a doubling delay, ``max_attempts`` times in all, then moved to
the ``dead_letters`` table with its last error. Finishing trips is a step of its own, in its own
transaction: it happens whatever the rollups do.
"""

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections import defaultdict
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import Counter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from obd2_dashboard.alerts.firing import evaluate_touched
from obd2_dashboard.kit.broker import Broker, StreamEntry
from obd2_dashboard.kit.db import is_unavailable, session_scope, utcnow
from obd2_dashboard.ops.redis_bootstrap import bootstrap
from obd2_dashboard.settings import Settings
from obd2_dashboard.telemetry.repository import OutboxRepository, RollupRepository
from obd2_dashboard.telemetry.retention import prune_samples
from obd2_dashboard.telemetry.streams import DEADLETTER_STREAM, WORK_GROUP, WORK_STREAM
from obd2_dashboard.trips.events import queue_trip_events
from obd2_dashboard.trips.service import (
    TripChange,
    finish_backfilled_trips,
    finish_idle_trips,
)
from obd2_dashboard.trips.service import recompute_vehicle as recompute_trips

log = logging.getLogger("obd2_dashboard.worker")

PROCESSED = Counter("obd2_worker_batches_total", "Outbox batches turned into rollups", ["path"])
FAILURES = Counter("obd2_worker_failures_total", "Work entries that failed processing")
DEAD_LETTERED = Counter("obd2_worker_dead_letters_total", "Work entries given up on")
BATCH_FAILURES = Counter(
    "obd2_worker_batch_failures_total", "Failed tries of a stored batch's derived data"
)
BATCHES_DEAD_LETTERED = Counter(
    "obd2_worker_batches_dead_lettered_total",
    "Stored batches moved to dead_letters after their last try failed",
)
# A failing batch waits retry_backoff_s * 2^(tries - 1) before its next try, at most this long.
MAX_RETRY_DELAY_S = 3600.0

DEFAULT_TRIP_JOIN_GAP_MS: int = Settings.model_fields["TRIP_JOIN_GAP_S"].default * 1000


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    consumer: str
    batch: int = 200
    block_ms: int = 1_000
    claim_idle_ms: int = 30_000
    max_deliveries: int = 5
    sweep_interval_s: float = 5.0
    sweep_age_s: float = 15.0
    retention_days: float | None = None
    retention_interval_s: float = 3600.0
    trip_join_gap_ms: int = DEFAULT_TRIP_JOIN_GAP_MS
    # Tries of a failing batch before it is dead-lettered, and the delay before the second.
    max_attempts: int = 5
    retry_backoff_s: float = 5.0
    # Queue trip events for the MQTT publisher (only when MQTT is configured).
    trip_events: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> "WorkerConfig":
        return cls(
            consumer=default_consumer_name(),
            claim_idle_ms=settings.WORKER_CLAIM_IDLE_MS,
            sweep_age_s=settings.WORKER_SWEEP_AGE_S,
            retention_days=settings.RETENTION_DAYS,
            retention_interval_s=settings.RETENTION_INTERVAL_S,
            trip_join_gap_ms=settings.TRIP_JOIN_GAP_S * 1000,
            max_attempts=settings.WORKER_MAX_ATTEMPTS,
            retry_backoff_s=settings.WORKER_RETRY_BACKOFF_S,
            trip_events=settings.MQTT_URL is not None,
        )


def default_consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def describe_error(exc: BaseException) -> str:
    """One line naming what went wrong: the driver's error rather than SQLAlchemy's wrapper, and
    never the statement or its parameters (this is shown on the Status page)."""
    cause: BaseException = exc
    orig = getattr(exc, "orig", None)
    if isinstance(orig, BaseException):
        # asyncpg's own exception (NumericValueOutOfRangeError…) behind the DB-API adapter's.
        cause = orig.__cause__ if orig.__cause__ is not None else orig
    lines = str(cause).strip().splitlines()
    name = type(cause).__name__
    return f"{name}: {lines[0][:300]}" if lines else name


def _parse_buckets(text: str) -> set[tuple[str, int]]:
    buckets = set()
    for item in text.split():
        pid, _, ts = item.rpartition(":")
        buckets.add((pid, int(ts)))
    return buckets


async def process_outbox(
    session: AsyncSession,
    ids: Sequence[int],
    *,
    trip_join_gap_ms: int = DEFAULT_TRIP_JOIN_GAP_MS,
    events: Broker | None = None,
) -> int:
    """Recomputes every minute the given batches touched, then the trips around them, and
    clears the batches; returns how many. With ``events``, trip events are queued there once
    the transaction commits.

    Backfilled batches (past data stored in bulk) get their rollups and trips like any other,
    but no alert is evaluated and no trip event queued for them, and the trips they build are
    finished at once when they are over.
    """
    outbox = OutboxRepository(session)
    rows = await outbox.get_many(sorted(set(ids)))
    touched: dict[int, set[tuple[str, int]]] = defaultdict(set)
    live: dict[int, set[tuple[str, int]]] = defaultdict(set)
    backfilled: dict[int, set[tuple[str, int]]] = defaultdict(set)
    for row in rows:
        buckets = _parse_buckets(row.buckets)
        touched[row.vehicle_id] |= buckets
        (backfilled if row.backfill else live)[row.vehicle_id] |= buckets
    rollups = RollupRepository(session)
    now_ms = int(time.time() * 1000)
    # A fixed order (vehicle, PID, minute) so two workers never lock rows in opposite orders.
    for vehicle_id in sorted(touched):
        await rollups.lock_vehicle(vehicle_id)
        await rollups.recompute(vehicle_id, touched[vehicle_id])
        # Trips read raw samples of the same minutes: recomputed whole, so also idempotent.
        if vehicle_id in backfilled:
            quiet = await recompute_trips(
                session, vehicle_id, backfilled[vehicle_id], trip_join_gap_ms
            )
            await finish_backfilled_trips(session, quiet, now_ms, trip_join_gap_ms)
        if vehicle_id in live:
            changes = await recompute_trips(session, vehicle_id, live[vehicle_id], trip_join_gap_ms)
            if events is not None:
                await queue_trip_events(session, events, vehicle_id, changes)
    # In the same transaction: an alert fires exactly when its batch's work is done.
    await evaluate_touched(session, live)
    if rows:
        await outbox.delete_many([row.id for row in rows])
    return len(rows)


async def finish_trips(
    session: AsyncSession, now_ms: int, join_gap_ms: int, *, events: Broker | None = None
) -> int:
    """Declares finished the trips with nothing new for the join gap; with ``events``, queues
    trip.finished for each once the transaction commits. Returns how many."""
    finished = await finish_idle_trips(session, now_ms, join_gap_ms)
    if events is not None:
        per_vehicle: dict[int, list[TripChange]] = defaultdict(list)
        for trip in finished:
            per_vehicle[trip.vehicle_id].append(TripChange("trip.finished", trip.id))
        for vehicle_id, changes in sorted(per_vehicle.items()):
            await queue_trip_events(session, events, vehicle_id, changes)
    return len(finished)


Loop = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


class RollupWorker:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        broker: Broker,
        config: WorkerConfig,
        companions: Sequence[Loop] = (),
    ) -> None:
        self.sessionmaker = sessionmaker
        self.broker = broker
        self.config = config
        # Other loops of the worker process (alert delivery, MQTT); each returns once stop is set.
        self.companions = list(companions)

    async def run(self, stop: asyncio.Event) -> None:
        log.info("worker started", extra={"consumer": self.config.consumer})
        tasks = [
            asyncio.create_task(self._consume_loop(stop), name="worker-consume"),
            asyncio.create_task(self._sweep_loop(stop), name="worker-sweep"),
        ]
        companions = [asyncio.create_task(loop(stop)) for loop in self.companions]
        if self.config.retention_days is not None:
            tasks.append(asyncio.create_task(self._retention_loop(stop), name="worker-retention"))
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            # Given a moment to finish cleanly (MQTT says goodbye), then cancelled.
            if companions:
                _, late = await asyncio.wait(companions, timeout=5)
                for task in late:
                    task.cancel()
                for task in companions:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            log.info("worker stopped", extra={"consumer": self.config.consumer})

    async def _process(self, ids: Sequence[int], path: str) -> None:
        """Does the batches' work, each vehicle's in a transaction of its own; a batch that
        fails is counted and retried later (or dead-lettered), never raised. Raises only when
        the database does not answer: nothing can be done or recorded then."""
        now = utcnow()
        async with self.sessionmaker() as session:
            rows = await OutboxRepository(session).get_many(sorted(set(ids)))
            per_vehicle: dict[int, list[int]] = defaultdict(list)
            for row in rows:
                # A batch waiting out its retry delay (its entry delivered again) waits on.
                if row.next_attempt_at is None or row.next_attempt_at <= now:
                    per_vehicle[row.vehicle_id].append(row.id)
        for vehicle_id in sorted(per_vehicle):
            await self._process_vehicle(vehicle_id, per_vehicle[vehicle_id], path)

    async def _process_vehicle(self, vehicle_id: int, ids: list[int], path: str) -> None:
        try:
            await self._process_together(ids, path)
            return
        except Exception as exc:
            await self._raise_if_unreachable(exc)
            if len(ids) == 1:
                await self._record_failure(vehicle_id, ids[0], exc)
                return
        # One of them fails the others: each on its own, so that only the failing one's tries
        # are counted and the rest is done now.
        for outbox_id in ids:
            try:
                await self._process_together([outbox_id], path)
            except Exception as exc:
                await self._raise_if_unreachable(exc)
                await self._record_failure(vehicle_id, outbox_id, exc)

    async def _raise_if_unreachable(self, exc: Exception) -> None:
        """Re-raises a failure of the database to answer: no batch is to blame for it, so no
        try is counted. An error that only looks like one (a driver error some statement
        raises every time) is the batch's when the database answers a ping right after."""
        if not is_unavailable(exc):
            return
        try:
            async with self.sessionmaker() as session:
                await session.execute(text("SELECT 1"))
        except Exception:
            raise exc from None

    async def _process_together(self, ids: Sequence[int], path: str) -> None:
        async with session_scope(self.sessionmaker) as session:
            done = await process_outbox(
                session,
                ids,
                trip_join_gap_ms=self.config.trip_join_gap_ms,
                events=self.broker if self.config.trip_events else None,
            )
        PROCESSED.labels(path).inc(done)

    def _retry_at(self, attempts: int) -> datetime:
        delay = min(self.config.retry_backoff_s * 2 ** max(0, attempts - 1), MAX_RETRY_DELAY_S)
        return utcnow() + timedelta(seconds=delay)

    async def _record_failure(self, vehicle_id: int, outbox_id: int, exc: Exception) -> None:
        error = describe_error(exc)
        BATCH_FAILURES.inc()
        async with session_scope(self.sessionmaker) as session:
            outbox = OutboxRepository(session)
            attempts = await outbox.record_failure(outbox_id, error)
            if attempts is None:
                return  # done meanwhile by another worker
            if attempts < self.config.max_attempts:
                await outbox.schedule_retry(outbox_id, self._retry_at(attempts))
                log.warning(
                    "batch failed, will retry",
                    extra={
                        "vehicle_id": vehicle_id,
                        "outbox_id": outbox_id,
                        "attempts": attempts,
                        "error": error,
                    },
                )
                return
            letter = await outbox.move_to_dead_letters(outbox_id)
            letter_id = None if letter is None else letter.id
        if letter_id is not None:
            BATCHES_DEAD_LETTERED.inc()
            log.error(
                "batch dead-lettered",
                extra={
                    "vehicle_id": vehicle_id,
                    "outbox_id": outbox_id,
                    "dead_letter_id": letter_id,
                    "attempts": attempts,
                    "error": error,
                },
            )

    async def _consume_loop(self, stop: asyncio.Event) -> None:
        backoff = 0.2
        group_ready = False
        while not stop.is_set():
            try:
                if not group_ready:
                    # Also repairs a Redis that restarted empty (group and schema key gone).
                    await bootstrap(self.broker)
                    group_ready = True
                await self.consume_once()
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # NOGROUP after a Redis restart without persistence: make the group again.
                group_ready = False
                log.warning("worker stream error: %s: %s", type(exc).__name__, str(exc)[:200])
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def consume_once(self) -> int:
        cfg = self.config
        claimed = await self.broker.xautoclaim(
            WORK_STREAM, WORK_GROUP, cfg.consumer, min_idle_ms=cfg.claim_idle_ms, count=cfg.batch
        )
        entries: list[StreamEntry] = []
        for entry in claimed:
            if entry.deliveries > cfg.max_deliveries:
                await self._dead_letter(entry.id, entry.fields, f"{entry.deliveries} deliveries")
            else:
                entries.append((entry.id, entry.fields))
        if not entries:
            entries = await self.broker.xreadgroup(
                WORK_STREAM, WORK_GROUP, cfg.consumer, count=cfg.batch, block_ms=cfg.block_ms
            )
        if not entries:
            return 0
        ids: list[int] = []
        good: list[str] = []
        for entry_id, fields in entries:
            try:
                ids.append(int(fields["outbox"]))
                good.append(entry_id)
            except (KeyError, ValueError):
                await self._dead_letter(entry_id, fields, "malformed entry")
        try:
            await self._process(ids, "stream")
        except Exception:
            FAILURES.inc(len(good))
            # Only when the database does not answer (a batch that fails is recorded and
            # acknowledged): left pending, claimed again after claim_idle_ms.
            raise
        await self.broker.xack(WORK_STREAM, WORK_GROUP, good)
        return len(good)

    async def _dead_letter(self, entry_id: str, fields: dict[str, str], reason: str) -> None:
        await self.broker.xadd(
            DEADLETTER_STREAM, {**fields, "entry": entry_id, "reason": reason}, maxlen=10_000
        )
        await self.broker.xack(WORK_STREAM, WORK_GROUP, [entry_id])
        DEAD_LETTERED.inc()
        log.error("work entry dead-lettered", extra={"entry": entry_id, "reason": reason})

    async def sweep_once(self) -> int:
        now = utcnow()
        cutoff = now - timedelta(seconds=self.config.sweep_age_s)
        async with self.sessionmaker() as session:
            rows = await OutboxRepository(session).older_than(cutoff, self.config.batch, due_at=now)
        if rows:
            await self._process([row.id for row in rows], "sweep")
        return len(rows)

    async def finish_trips_once(self, now_ms: int | None = None) -> int:
        """Declares finished the trips idle for the join gap; returns how many."""
        now = now_ms if now_ms is not None else int(time.time() * 1000)
        async with session_scope(self.sessionmaker) as session:
            return await finish_trips(
                session,
                now,
                self.config.trip_join_gap_ms,
                events=self.broker if self.config.trip_events else None,
            )

    async def _retention_loop(self, stop: asyncio.Event) -> None:
        assert self.config.retention_days is not None
        while not stop.is_set():
            try:
                await prune_samples(self.sessionmaker, older_than_days=self.config.retention_days)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("retention run failed: %s", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.config.retention_interval_s)

    async def _sweep_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                # A batch that fails waits out its retry delay, so this ends.
                while await self.sweep_once() >= self.config.batch:
                    pass
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("worker sweep error: %s", type(exc).__name__)
            # A step of its own: trips end on time whatever the rollups do.
            try:
                await self.finish_trips_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("worker trip finishing error: %s", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.config.sweep_interval_s)
