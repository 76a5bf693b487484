"""The persistence worker: turns stored batches into per-minute rollups and trips.

Work arrives on a consumer-group stream (one entry per stored batch, naming its outbox row).
Delivery is at least once, so processing recomputes whole minutes from raw rows and is
idempotent. Entries left pending by a dead consumer are claimed after ``claim_idle_ms``; an
entry that keeps failing goes to a dead-letter stream. A sweep of the outbox table does the work
of any batch whose stream entry never arrived (Redis down or restarted empty).
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
from datetime import timedelta
from typing import Any

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from obd2_dashboard.alerts.firing import evaluate_touched
from obd2_dashboard.kit.broker import Broker, StreamEntry
from obd2_dashboard.kit.db import session_scope, utcnow
from obd2_dashboard.ops.redis_bootstrap import bootstrap
from obd2_dashboard.settings import Settings
from obd2_dashboard.telemetry.repository import OutboxRepository, RollupRepository
from obd2_dashboard.telemetry.retention import prune_samples
from obd2_dashboard.telemetry.streams import DEADLETTER_STREAM, WORK_GROUP, WORK_STREAM
from obd2_dashboard.trips.events import queue_trip_events
from obd2_dashboard.trips.service import TripChange, finish_idle_trips
from obd2_dashboard.trips.service import recompute_vehicle as recompute_trips

log = logging.getLogger("obd2_dashboard.worker")

PROCESSED = Counter("obd2_worker_batches_total", "Outbox batches turned into rollups", ["path"])
FAILURES = Counter("obd2_worker_failures_total", "Work entries that failed processing")
DEAD_LETTERED = Counter("obd2_worker_dead_letters_total", "Work entries given up on")

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
            trip_events=settings.MQTT_URL is not None,
        )


def default_consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


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
    the transaction commits."""
    outbox = OutboxRepository(session)
    rows = await outbox.get_many(sorted(set(ids)))
    per_vehicle: dict[int, set[tuple[str, int]]] = defaultdict(set)
    for row in rows:
        per_vehicle[row.vehicle_id] |= _parse_buckets(row.buckets)
    rollups = RollupRepository(session)
    # A fixed order (vehicle, PID, minute) so two workers never lock rows in opposite orders.
    for vehicle_id in sorted(per_vehicle):
        await rollups.lock_vehicle(vehicle_id)
        await rollups.recompute(vehicle_id, per_vehicle[vehicle_id])
        # Trips read raw samples of the same minutes: recomputed whole, so also idempotent.
        changes = await recompute_trips(
            session, vehicle_id, per_vehicle[vehicle_id], trip_join_gap_ms
        )
        if events is not None:
            await queue_trip_events(session, events, vehicle_id, changes)
    # In the same transaction: an alert fires exactly when its batch's work is done.
    await evaluate_touched(session, per_vehicle)
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
        async with session_scope(self.sessionmaker) as session:
            done = await process_outbox(
                session,
                ids,
                trip_join_gap_ms=self.config.trip_join_gap_ms,
                events=self.broker if self.config.trip_events else None,
            )
        PROCESSED.labels(path).inc(done)

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
            raise  # left pending: claimed again after claim_idle_ms, dead-lettered if it persists
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
        cutoff = utcnow() - timedelta(seconds=self.config.sweep_age_s)
        async with self.sessionmaker() as session:
            rows = await OutboxRepository(session).older_than(cutoff, self.config.batch)
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
                while await self.sweep_once() >= self.config.batch:
                    pass
                await self.finish_trips_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("worker sweep error: %s", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.config.sweep_interval_s)
