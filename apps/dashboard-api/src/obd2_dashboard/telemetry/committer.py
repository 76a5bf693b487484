"""Group commit for ingest: the batches that arrive while one transaction is being written are
stored together by the next.

Every transport (HTTP, the bridge WebSocket, Torque) hands its batch to the process's
committer and waits: the batch's answer (accepted and duplicate counts) comes once the
transaction holding it has committed, so an answer still means durable. One transaction for
several batches pays once for what each used to pay alone: BEGIN and COMMIT (a WAL flush), the
device lookup, the COPY's setup, the outbox row of a vehicle and the pooled connection. The
first batch after a quiet spell is written at once; nothing waits for a group to fill.

Devices are authenticated inside the group's transaction, by token digest, so a revoked token
is refused from the next group on, with no cache to go stale. A group the database refuses for
a reason other than being unreachable is written again one batch at a time, so that one bad
batch is the only one to fail. Live fan-out and the worker's notification follow the commit in
commit order, overlapping the next group's writing; each batch is answered after its own
fan-out, as before.

The same transaction records the PIDs of new samples in the vehicle's PID catalogue
(``pids.service.PidCatalogue``): a PID the process already knows costs no query.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from obd2_dashboard.devices.service import active_by_token_hashes, device_token_digest
from obd2_dashboard.devices.values import ActiveDevice
from obd2_dashboard.kit.db import after_commit, is_unavailable, session_scope, utcnow
from obd2_dashboard.models import ROLLUP_BUCKET_MS
from obd2_dashboard.pids.definitions import Source
from obd2_dashboard.pids.service import PidCatalogue, Recorded
from obd2_dashboard.presence.state import Thresholds
from obd2_dashboard.telemetry.repository import OutboxRepository, SampleRepository
from obd2_dashboard.telemetry.service import (
    BATCHES,
    INGESTED,
    Pipeline,
    check_times,
    unique_by_seq,
)
from obd2_protocol import IngestResult, SampleFields

log = logging.getLogger("obd2_dashboard.telemetry")

GROUP_BATCHES = Histogram(
    "obd2_ingest_group_batches",
    "Batches stored by one ingest transaction (group commit)",
    buckets=(1, 2, 4, 8, 16, 32, 64),
)

QUEUE_FULL = Counter(
    "obd2_ingest_refused_busy_total", "Batches refused because too many rows awaited storage"
)

# Rows of one transaction at most: a backlog is written as several transactions, each short
# enough that its batches are answered without a long wait.
MAX_GROUP_ROWS = 20_000
# Rows waiting for a transaction at most: past that the database is not keeping up, and a
# batch is refused at once (the device keeps it and retries) rather than queued for seconds.
MAX_QUEUED_ROWS = 10 * MAX_GROUP_ROWS


class DeviceRejectedError(Exception):
    """The token is not one of an active device."""


BUSY_DETAIL = "the server is storing a backlog; retry shortly"


class IngestBusyError(Exception):
    """Too much is already waiting to be stored: retry after a moment."""


# Who sent a batch, for the PID catalogue's records, by transport.
_SENDERS: dict[str, Source] = {"torque": "torque", "import": "import"}


@dataclass(slots=True)
class _Batch:
    digest: bytes
    samples: Sequence[SampleFields]
    received: int
    transport: str
    agent_version: str | None
    backfill: bool
    answer: asyncio.Future[IngestResult]

    @property
    def sender(self) -> Source:
        return _SENDERS.get(self.transport, "agent")


@dataclass(slots=True)
class _Stored:
    """A committed group: what goes live, what the worker is told, who is answered."""

    live: list[tuple[int, Sequence[SampleFields]]] = field(default_factory=list)
    outbox_ids: list[int] = field(default_factory=list)
    answers: list[tuple[_Batch, IngestResult | BaseException]] = field(default_factory=list)


class IngestCommitter:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        pipeline: Pipeline,
        *,
        max_group_rows: int = MAX_GROUP_ROWS,
        max_queued_rows: int = MAX_QUEUED_ROWS,
        catalogue: PidCatalogue | None = None,
        thresholds: Thresholds | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.thresholds = thresholds if thresholds is not None else Thresholds()
        self.pipeline = pipeline
        self.catalogue = catalogue if catalogue is not None else PidCatalogue()
        self.max_group_rows = max_group_rows
        self.max_queued_rows = max_queued_rows
        self._queue: list[_Batch] = []
        self._queued_rows = 0
        self._writer: asyncio.Task[None] | None = None
        # The newest group's fan-out: the next one waits for it, keeping live order.
        self._fan_out: asyncio.Task[None] | None = None

    async def store(
        self,
        token: str,
        samples: Sequence[SampleFields],
        *,
        transport: str,
        agent_version: str | None = None,
        backfill: bool = False,
    ) -> IngestResult:
        """Stores a batch for the device the token belongs to; returns once it is durable.

        A ``backfill`` batch is past data stored in bulk (the demo's month of history): it goes
        to no live viewer, and the worker builds its rollups and trips without firing alerts or
        announcing trips.

        DeviceRejectedError for a token of no active device, InvalidBatchError for samples
        the server will not store, IngestBusyError when the queue is full; database errors as
        the transaction raised them.
        """
        digest = device_token_digest(token)
        if digest is None:
            raise DeviceRejectedError
        check_times(samples, int(time.time() * 1000))
        if self._queued_rows and self._queued_rows + len(samples) > self.max_queued_rows:
            QUEUE_FULL.inc()
            raise IngestBusyError
        answer: asyncio.Future[IngestResult] = asyncio.get_running_loop().create_future()
        batch = _Batch(
            digest, unique_by_seq(samples), len(samples), transport, agent_version, backfill, answer
        )
        self._queue.append(batch)
        self._queued_rows += len(batch.samples)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_queued(), name="ingest-committer")
        return await answer

    @property
    def queued_rows(self) -> int:
        """Rows waiting for a transaction (the backpressure limit counts these)."""
        return self._queued_rows

    async def close(self) -> None:
        """Waits for what is queued to be stored and answered."""
        for task in (self._writer, self._fan_out):
            if task is not None:
                with contextlib.suppress(Exception):
                    await task

    def _take_group(self) -> list[_Batch]:
        group: list[_Batch] = []
        rows = 0
        while self._queue:
            if group and rows + len(self._queue[0].samples) > self.max_group_rows:
                break
            batch = self._queue.pop(0)
            self._queued_rows -= len(batch.samples)
            if batch.answer.done():  # its request was cancelled before it was written
                continue
            group.append(batch)
            rows += len(batch.samples)
        return group

    async def _write_queued(self) -> None:
        while self._queue:
            group = self._take_group()
            if not group:
                continue
            GROUP_BATCHES.observe(len(group))
            stored = await self._commit(group)
            previous = self._fan_out
            self._fan_out = asyncio.create_task(self._fan_out_and_answer(previous, stored))

    async def _commit(self, group: list[_Batch]) -> _Stored:
        try:
            async with session_scope(self.sessionmaker) as session:
                return await self._write(session, group)
        except Exception as exc:
            if len(group) == 1 or is_unavailable(exc):
                return _Stored(answers=[(batch, exc) for batch in group])
        # The database refused the group for something in it: alone, each batch gets its own
        # answer and the others are stored.
        log.warning("ingest group refused; storing its %d batches one by one", len(group))
        stored = _Stored()
        for batch in group:
            one = await self._commit([batch])
            stored.live += one.live
            stored.outbox_ids += one.outbox_ids
            stored.answers += one.answers
        return stored

    async def _write(self, session: AsyncSession, group: list[_Batch]) -> _Stored:
        devices = await active_by_token_hashes(session, {batch.digest for batch in group})
        stored = _Stored()
        accepted: list[tuple[_Batch, ActiveDevice]] = []
        for batch in group:
            device = devices.get(batch.digest)
            if device is None:
                stored.answers.append((batch, DeviceRejectedError()))
            else:
                accepted.append((batch, device))
        if not accepted:
            return stored
        repo = SampleRepository(session)
        fresh_lists = await repo.insert_new_many(
            [(device.id, device.vehicle_id, batch.samples) for batch, device in accepted]
        )
        now = utcnow()
        versions: dict[int, tuple[ActiveDevice, str | None]] = {}
        for batch, device in accepted:
            if batch.backfill:
                continue  # past data: nobody was heard from now (silence rules, "online")
            if batch.agent_version is not None or device.id not in versions:
                versions[device.id] = (device, batch.agent_version)
        for device, version in versions.values():
            await repo.touch_uploaded(device, now, self.thresholds, version)
        # One outbox row per vehicle, and one more for its backfilled batches.
        buckets: dict[tuple[int, bool], set[tuple[str, int]]] = {}
        senders: dict[tuple[int, Source], list[Sequence[SampleFields]]] = {}
        for (batch, device), fresh in zip(accepted, fresh_lists, strict=True):
            if fresh:
                buckets.setdefault((device.vehicle_id, batch.backfill), set()).update(
                    (s.pid, s.ts - s.ts % ROLLUP_BUCKET_MS) for s in fresh
                )
                senders.setdefault((device.vehicle_id, batch.sender), []).append(fresh)
                if not batch.backfill:
                    stored.live.append((device.vehicle_id, fresh))
            result = IngestResult(accepted=len(fresh), duplicates=batch.received - len(fresh))
            stored.answers.append((batch, result))
        recorded = [
            await self._record_pids(
                session,
                vehicle_id,
                sender,
                buckets.get((vehicle_id, False), set()) | buckets.get((vehicle_id, True), set()),
                lists,
            )
            for (vehicle_id, sender), lists in senders.items()
        ]
        if any(r.entries for r in recorded):

            async def remember() -> None:
                self.catalogue.remember(recorded)

            after_commit(session, remember)
        outbox = OutboxRepository(session)
        for (vehicle_id, backfill), vehicle_buckets in buckets.items():
            stored.outbox_ids.append(
                await outbox.add(vehicle_id, vehicle_buckets, backfill=backfill)
            )
        return stored

    async def _record_pids(
        self,
        session: AsyncSession,
        vehicle_id: int,
        sender: Source,
        buckets: set[tuple[str, int]],
        lists: list[Sequence[SampleFields]],
    ) -> Recorded:
        """The catalogue's records for the PIDs of new samples: known ones cost nothing (the
        minutes already computed for the outbox tell the candidates), new ones one upsert."""
        oldest: dict[str, int] = {}
        for pid, minute in buckets:
            if pid not in oldest or minute < oldest[pid]:
                oldest[pid] = minute
        candidates = set(self.catalogue.candidates(vehicle_id, oldest))
        if not candidates:
            return Recorded()
        first: dict[str, int] = {}
        for samples in lists:
            for s in samples:
                if s.pid in candidates and (s.pid not in first or s.ts < first[s.pid]):
                    first[s.pid] = s.ts
        return await self.catalogue.record(session, vehicle_id, first, sender)

    async def _fan_out_and_answer(
        self, previous: asyncio.Task[None] | None, stored: _Stored
    ) -> None:
        if previous is not None:
            with contextlib.suppress(Exception):
                await previous
        try:
            await self.pipeline.live.publish_many(stored.live)
            await self.pipeline.notify_work(stored.outbox_ids)
        finally:
            for batch, outcome in stored.answers:
                if isinstance(outcome, IngestResult):
                    INGESTED.labels("accepted").inc(outcome.accepted)
                    INGESTED.labels("duplicate").inc(outcome.duplicates)
                    BATCHES.labels(batch.transport).inc()
                if batch.answer.done():
                    continue
                if isinstance(outcome, IngestResult):
                    batch.answer.set_result(outcome)
                else:
                    batch.answer.set_exception(outcome)
