from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import bindparam, case, delete, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from obd2_dashboard.devices.values import ActiveDevice
from obd2_dashboard.kit.db import driver_connection, utcnow
from obd2_dashboard.models import (
    ROLLUP_15M_BUCKET_MS,
    ROLLUP_BUCKET_MS,
    DeadLetter,
    Device,
    IngestOutbox,
    Sample,
    Vehicle,
)
from obd2_dashboard.presence.state import Thresholds
from obd2_dashboard.telemetry.values import Bucket
from obd2_protocol import SampleFields

_S = TypeVar("_S", bound=SampleFields)

# Namespace of the per-vehicle advisory lock of rollup recomputation (high 32 bits; the vehicle
# id fills the low ones).
_ROLLUP_LOCK_NAMESPACE = 0x524F4C4C << 32  # "ROLL"

# last_seen columns are refreshed at most this often: a write per batch would make every
# ingest of one vehicle queue on the same row lock.
LAST_SEEN_RESOLUTION = timedelta(seconds=5)


# History leaves out stored values beyond this magnitude (and non-finite ones). No PID reads
# anywhere near it (the largest, ODOMETER, stays below 10^7 km), yet a database written before
# ingest refused such values may hold them: PostgreSQL's avg() accumulates squares, so one
# 1e308 in a bucket makes the whole query fail with "value out of range: overflow", and SQLite
# turns the sum into inf, which JSON cannot carry. Left out rather than clamped: a clamped value
# would be drawn as if it had been read. A rollup row holding one (made before) is left out
# whole, as its average is no reading either.
HISTORY_VALUE_LIMIT = 1e15


# Six bound values a row, under SQLite's limit of 32 766 per statement.
_SQLITE_ROWS_PER_INSERT = 1000
_SAMPLE_COLUMNS = ("device_id", "seq", "vehicle_id", "ts", "pid", "value")
# The replay path: the columns travel as comma-separated text, which Postgres splits faster than
# asyncpg encodes arrays (PID names hold no comma; repr() of a float reads back as the same
# float). Seqs come back only when some were already stored.
_INSERT_NEW_PG = (
    "WITH stored AS (INSERT INTO samples (device_id, seq, vehicle_id, ts, pid, value) "
    "SELECT $1, s.seq, $2, s.ts, s.pid, s.value FROM unnest("
    "string_to_array($3, ',')::bigint[], string_to_array($4, ',')::bigint[], "
    "string_to_array($5, ','), string_to_array($6, ',')::float8[]) AS s(seq, ts, pid, value) "
    "ON CONFLICT DO NOTHING RETURNING seq) "
    "SELECT count(*), CASE WHEN count(*) < $7 THEN array_agg(seq) END FROM stored"
)
_INSERT_OUTBOX_PG = (
    "INSERT INTO ingest_outbox (vehicle_id, buckets, created_at, backfill) "
    "VALUES ($1, $2, $3, $4) RETURNING id"
)


_ROLLUP_TABLES = {"1m": "sample_rollups_1m", "15m": "sample_rollups_15m"}


@lru_cache(maxsize=8)
def _sqlite_insert_new(rows: int) -> str:
    values = ", ".join(["(?, ?, ?, ?, ?, ?)"] * rows)
    return (
        f"INSERT INTO samples ({', '.join(_SAMPLE_COLUMNS)}) VALUES {values} "
        "ON CONFLICT DO NOTHING RETURNING seq"
    )


async def _insert_new_pg(
    connection: Any, device_id: int, vehicle_id: int, samples: Sequence[_S]
) -> Sequence[_S]:
    count, seqs = await connection.fetchrow(
        _INSERT_NEW_PG,
        device_id,
        vehicle_id,
        ",".join([str(s.seq) for s in samples]),
        ",".join([str(s.ts) for s in samples]),
        ",".join([s.pid for s in samples]),
        ",".join([repr(s.value) for s in samples]),
        len(samples),
    )
    if count == len(samples):
        return samples
    new_seqs = set(seqs or ())
    return [s for s in samples if s.seq in new_seqs]


def _is_pg(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


class SampleRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_new(
        self, device_id: int, vehicle_id: int, samples: Sequence[_S]
    ) -> Sequence[_S]:
        """Stores the samples whose (device, seq) is new (seqs unique within the batch)."""
        (fresh,) = await self.insert_new_many([(device_id, vehicle_id, samples)])
        return fresh

    async def insert_new_many(
        self, batches: Sequence[tuple[int, int, Sequence[_S]]]
    ) -> list[Sequence[_S]]:
        """Several (device id, vehicle id, samples) batches: the new samples of each, stored.

        Seqs are unique within each batch; batches of one device may overlap, and a later one
        then gets as duplicates what an earlier one stored.
        """
        if not _is_pg(self.session):
            return [await self._insert_new_sqlite(*batch) for batch in batches]
        # Straight on asyncpg: through SQLAlchemy these statements cost more CPU than Postgres
        # spends storing the rows.
        connection = await driver_connection(self.session)
        try:
            # COPY stores rows at a third of the database CPU of INSERT … ON CONFLICT, but fails
            # whole on a stored seq: replays are rare, so they pay for the savepoint's rollback
            # and take the INSERT, batch by batch.
            async with connection.transaction():
                await connection.copy_records_to_table(
                    "samples",
                    records=[
                        (device_id, s.seq, vehicle_id, s.ts, s.pid, s.value)
                        for device_id, vehicle_id, samples in batches
                        for s in samples
                    ],
                    columns=_SAMPLE_COLUMNS,
                )
        except asyncpg.UniqueViolationError:
            return [await _insert_new_pg(connection, *batch) for batch in batches]
        return [samples for _, _, samples in batches]

    async def _insert_new_sqlite(
        self, device_id: int, vehicle_id: int, samples: Sequence[_S]
    ) -> Sequence[_S]:
        # One statement per chunk: a "which exist" query before the INSERT would race another
        # connection's commit in between (SQLite takes its write lock only at the INSERT).
        # Written as driver SQL: SQLAlchemy's compilation of a many-row INSERT costs several
        # times what SQLite spends storing it.
        connection = await self.session.connection()
        stored: set[int] = set()
        for start in range(0, len(samples), _SQLITE_ROWS_PER_INSERT):
            chunk = samples[start : start + _SQLITE_ROWS_PER_INSERT]
            params: list[object] = []
            for s in chunk:
                params += (device_id, s.seq, vehicle_id, s.ts, s.pid, s.value)
            result = await connection.exec_driver_sql(_sqlite_insert_new(len(chunk)), tuple(params))
            stored.update(row[0] for row in result)
        return [s for s in samples if s.seq in stored]

    async def others_running(self, vehicle_id: int, device_id: int, start: int, end: int) -> bool:
        """Whether another device of the vehicle stored RPM or SPEED in [start, end]."""
        result = await self.session.execute(
            select(Sample.seq)
            .where(
                Sample.vehicle_id == vehicle_id,
                Sample.pid.in_(("RPM", "SPEED")),
                Sample.ts >= start,
                Sample.ts <= end,
                Sample.device_id != device_id,
            )
            .limit(1)
        )
        return result.first() is not None

    async def stored_by_others(
        self, vehicle_id: int, device_id: int, start: int, end: int, pids: Sequence[str]
    ) -> set[tuple[int, str]]:
        """The (ts, pid) readings in [start, end] that other devices of the vehicle stored."""
        result = await self.session.execute(
            select(Sample.ts, Sample.pid).where(
                Sample.vehicle_id == vehicle_id,
                Sample.pid.in_(pids),
                Sample.ts >= start,
                Sample.ts <= end,
                Sample.device_id != device_id,
            )
        )
        return {(int(ts), str(pid)) for ts, pid in result}

    async def touch_uploaded(
        self,
        device: ActiveDevice,
        now: datetime,
        thresholds: Thresholds,
        agent_version: str | None = None,
    ) -> None:
        """Records a live upload: the device and its vehicle were heard from ``now``.

        The start of a new stretch (``flowing_since``, ``live_since``) is set in the same
        UPDATE when the previous upload is older than the threshold that ends a stretch
        (presence/state.py); SQL reads the row's old values on the right of SET.
        """
        # The vehicle is touched with its device, so a fresh device means a fresh vehicle: most
        # batches need neither UPDATE.
        recent = now - LAST_SEEN_RESOLUTION
        fresh = device.last_upload_at is not None and device.last_upload_at >= recent
        if fresh and agent_version is None:
            return
        gap = now - thresholds.device_silent_after
        values: dict[str, object] = {
            "last_seen_at": now,
            "last_upload_at": now,
            "flowing_since": case(
                (or_(Device.last_upload_at.is_(None), Device.last_upload_at < gap), now),
                else_=Device.flowing_since,
            ),
        }
        due = or_(Device.last_upload_at.is_(None), Device.last_upload_at < recent)
        if agent_version is not None:
            values["agent_version"] = agent_version
            due = or_(due, Device.agent_version.is_distinct_from(agent_version))
        await self.session.execute(update(Device).where(Device.id == device.id, due).values(values))
        stretch_ended = now - thresholds.vehicle_stale_after
        await self.session.execute(
            update(Vehicle)
            .where(
                Vehicle.id == device.vehicle_id,
                or_(Vehicle.last_seen_at.is_(None), Vehicle.last_seen_at < recent),
            )
            .values(
                last_seen_at=now,
                live_since=case(
                    (
                        or_(Vehicle.last_seen_at.is_(None), Vehicle.last_seen_at < stretch_ended),
                        now,
                    ),
                    else_=Vehicle.live_since,
                ),
            )
        )

    async def touch_reported(
        self,
        device_id: int,
        now: datetime,
        thresholds: Thresholds,
        agent_version: str,
        adapter_state: str,
    ) -> None:
        """Records an agent's status report: heard from ``now``, its adapter in this state
        (since now when the state changed or the device had gone silent)."""
        recent = now - LAST_SEEN_RESOLUTION
        silent = now - thresholds.device_silent_after
        changed = or_(
            Device.adapter_state.is_distinct_from(adapter_state),
            Device.last_seen_at.is_(None),
            Device.last_seen_at < silent,
        )
        due = or_(
            Device.last_seen_at.is_(None),
            Device.last_seen_at < recent,
            Device.agent_version.is_distinct_from(agent_version),
            Device.adapter_state.is_distinct_from(adapter_state),
        )
        await self.session.execute(
            update(Device)
            .where(Device.id == device_id, due)
            .values(
                last_seen_at=now,
                agent_version=agent_version,
                adapter_state=adapter_state,
                adapter_state_since=case((changed, now), else_=Device.adapter_state_since),
            )
        )

    async def history_raw(
        self, vehicle_id: int, pid: str, start: int, end: int, width: int
    ) -> list[Bucket]:
        result = await self.session.execute(
            text(
                "SELECT min(ts), avg(value), min(value), max(value), count(*) FROM samples "
                "WHERE vehicle_id = :vehicle_id AND pid = :pid AND ts >= :start AND ts < :end "
                # NaN compares above every number in PostgreSQL; SQLite stores it as NULL.
                "AND value BETWEEN :low AND :high "
                "GROUP BY (ts - :start) / :width ORDER BY 1"
            ),
            _history_window(vehicle_id, pid, start, end, width),
        )
        return [_bucket(row) for row in result]

    async def history_rollup(
        self, vehicle_id: int, pid: str, start: int, end: int, width: int, *, tier: str = "1m"
    ) -> list[Bucket]:
        table = _ROLLUP_TABLES[tier]
        result = await self.session.execute(
            text(
                "SELECT min(bucket_ts), sum(avg * count) / sum(count), min(min), max(max), "
                f"sum(count) FROM {table} "
                "WHERE vehicle_id = :vehicle_id AND pid = :pid "
                "AND bucket_ts >= :start AND bucket_ts < :end "
                "AND min >= :low AND max <= :high AND avg BETWEEN :low AND :high "
                "GROUP BY (bucket_ts - :start) / :width ORDER BY 1"
            ),
            _history_window(vehicle_id, pid, start, end, width),
        )
        return [_bucket(row) for row in result]

    async def stream_rows(
        self, vehicle_id: int, pids: Sequence[str], start: int, end: int
    ) -> AsyncIterator[Sequence[Sequence[Any]]]:
        """The raw rows of a range in time order, a chunk at a time (never all in memory)."""
        statement = text(
            "SELECT ts, pid, value FROM samples WHERE vehicle_id = :vehicle_id "
            "AND pid IN :pids AND ts >= :start AND ts < :end ORDER BY ts, pid"
        ).bindparams(
            bindparam("pids", value=list(pids), expanding=True),
            vehicle_id=vehicle_id,
            start=start,
            end=end,
        )
        stream = await self.session.stream(statement.execution_options(yield_per=5000))
        async for partition in stream.partitions(5000):
            yield partition

    async def pids_present(
        self, vehicle_id: int, pids: Sequence[str], start: int, end: int
    ) -> list[str]:
        """Which of ``pids`` have a sample in [start, end), in the order given.

        One index probe per PID (``(vehicle_id, pid, ts)``): asking for the distinct PIDs of a
        range instead would read every row of it.
        """
        if not pids:
            return []
        names = " UNION ALL ".join(f"SELECT :pid{i} AS pid" for i in range(len(pids)))
        statement = text(
            f"SELECT wanted.pid FROM ({names}) AS wanted WHERE EXISTS ("
            "SELECT 1 FROM samples WHERE samples.vehicle_id = :vehicle_id "
            "AND samples.pid = wanted.pid AND samples.ts >= :start AND samples.ts < :end)"
        )
        params: dict[str, object] = {f"pid{i}": pid for i, pid in enumerate(pids)}
        params.update(vehicle_id=vehicle_id, start=start, end=end)
        found = set((await self.session.execute(statement, params)).scalars())
        return [pid for pid in pids if pid in found]


def _history_window(
    vehicle_id: int, pid: str, start: int, end: int, width: int
) -> dict[str, object]:
    """The parameters of a history query: its window and the bound on the values it reads."""
    return {
        "vehicle_id": vehicle_id,
        "pid": pid,
        "start": start,
        "end": end,
        "width": width,
        "low": -HISTORY_VALUE_LIMIT,
        "high": HISTORY_VALUE_LIMIT,
    }


def _bucket(row: Sequence[Any]) -> Bucket:
    return Bucket(
        ts=int(row[0]),
        avg=float(row[1]),
        min=float(row[2]),
        max=float(row[3]),
        count=int(row[4]),
    )


class OutboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self, vehicle_id: int, buckets: set[tuple[str, int]], *, backfill: bool = False
    ) -> int:
        text_buckets = " ".join(f"{pid}:{ts}" for pid, ts in sorted(buckets))
        if _is_pg(self.session):
            connection = await driver_connection(self.session)
            return int(
                await connection.fetchval(
                    _INSERT_OUTBOX_PG, vehicle_id, text_buckets, utcnow(), backfill
                )
            )
        entry = IngestOutbox(vehicle_id=vehicle_id, buckets=text_buckets, backfill=backfill)
        self.session.add(entry)
        await self.session.flush()
        return entry.id

    async def get_many(self, ids: Sequence[int]) -> Sequence[IngestOutbox]:
        result = await self.session.execute(select(IngestOutbox).where(IngestOutbox.id.in_(ids)))
        return result.scalars().all()

    async def older_than(
        self, cutoff: datetime, limit: int, *, due_at: datetime | None = None
    ) -> Sequence[IngestOutbox]:
        """The oldest rows stored before ``cutoff``; with ``due_at``, only those whose retry
        (after a failure) is due by then."""
        statement = select(IngestOutbox).where(IngestOutbox.created_at < cutoff)
        if due_at is not None:
            statement = statement.where(
                or_(IngestOutbox.next_attempt_at.is_(None), IngestOutbox.next_attempt_at <= due_at)
            )
        result = await self.session.execute(statement.order_by(IngestOutbox.id).limit(limit))
        return result.scalars().all()

    async def record_failure(self, outbox_id: int, error: str) -> int | None:
        """Counts one failed try of the batch; returns its tries so far (None: row gone)."""
        result = await self.session.execute(
            update(IngestOutbox)
            .where(IngestOutbox.id == outbox_id)
            .values(attempts=IngestOutbox.attempts + 1, last_error=error)
            .returning(IngestOutbox.attempts)
        )
        attempts = result.scalar_one_or_none()
        return None if attempts is None else int(attempts)

    async def schedule_retry(self, outbox_id: int, at: datetime) -> None:
        await self.session.execute(
            update(IngestOutbox).where(IngestOutbox.id == outbox_id).values(next_attempt_at=at)
        )

    async def move_to_dead_letters(self, outbox_id: int) -> DeadLetter | None:
        """Replaces the outbox row with a dead letter holding its work and last error."""
        row = await self.session.get(IngestOutbox, outbox_id, populate_existing=True)
        if row is None:
            return None
        letter = DeadLetter(
            outbox_id=row.id,
            vehicle_id=row.vehicle_id,
            buckets=row.buckets,
            error=row.last_error or "",
            attempts=row.attempts,
            batch_created_at=row.created_at,
            backfill=row.backfill,
        )
        self.session.add(letter)
        await self.session.delete(row)
        await self.session.flush()
        return letter

    async def delete_many(self, ids: Sequence[int]) -> None:
        await self.session.execute(delete(IngestOutbox).where(IngestOutbox.id.in_(ids)))

    async def count(self) -> int:
        result = await self.session.execute(text("SELECT count(*) FROM ingest_outbox"))
        return int(result.scalar_one())


class RollupRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_vehicle(self, vehicle_id: int) -> None:
        """Serialises rollup recomputation per vehicle until the transaction ends.

        Without it two workers race: one reads a minute's raw rows, another (which saw a batch
        committed since) writes the fresher rollup and commits, then the first overwrites it
        with its older figures, and no work is left that would correct them. Taken before the
        recomputing statements, whose snapshots then include every batch committed by whoever
        held the lock before. Advisory, so that ingest never waits for it; SQLite has one
        writer at a time already.
        """
        if not _is_pg(self.session):
            return
        key = _ROLLUP_LOCK_NAMESPACE | (vehicle_id & 0xFFFFFFFF)
        await self.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})

    async def recompute(self, vehicle_id: int, buckets: set[tuple[str, int]]) -> None:
        """Rewrites each (PID, minute) rollup from the raw rows of that minute, then each
        (PID, quarter hour) rollup those minutes belong to from its minute rollups."""
        minutes = (
            "INSERT INTO sample_rollups_1m (vehicle_id, pid, bucket_ts, count, min, max, avg) "
            "SELECT vehicle_id, pid, :bucket, count(*), min(value), max(value), avg(value) "
            "FROM samples WHERE vehicle_id = :vehicle_id AND pid = :pid "
            "AND ts >= :bucket AND ts < :bucket_end GROUP BY vehicle_id, pid "
            "ON CONFLICT (vehicle_id, pid, bucket_ts) DO UPDATE SET count = excluded.count, "
            "min = excluded.min, max = excluded.max, avg = excluded.avg"
        )
        quarters = (
            "INSERT INTO sample_rollups_15m (vehicle_id, pid, bucket_ts, count, min, max, avg) "
            "SELECT vehicle_id, pid, :bucket, sum(count), min(min), max(max), "
            "sum(avg * count) / sum(count) FROM sample_rollups_1m "
            "WHERE vehicle_id = :vehicle_id AND pid = :pid "
            "AND bucket_ts >= :bucket AND bucket_ts < :bucket_end GROUP BY vehicle_id, pid "
            "ON CONFLICT (vehicle_id, pid, bucket_ts) DO UPDATE SET count = excluded.count, "
            "min = excluded.min, max = excluded.max, avg = excluded.avg"
        )
        for statement, width, touched in (
            (minutes, ROLLUP_BUCKET_MS, sorted(buckets)),
            (
                quarters,
                ROLLUP_15M_BUCKET_MS,
                sorted({(pid, b - b % ROLLUP_15M_BUCKET_MS) for pid, b in buckets}),
            ),
        ):
            params = [
                {
                    "vehicle_id": vehicle_id,
                    "pid": pid,
                    "bucket": bucket,
                    "bucket_end": bucket + width,
                }
                for pid, bucket in touched
            ]
            if params:
                await self.session.execute(text(statement), params)


class DeadLetterRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def count(self) -> int:
        result = await self.session.execute(select(func.count()).select_from(DeadLetter))
        return int(result.scalar_one())

    async def newest(self, limit: int) -> Sequence[DeadLetter]:
        result = await self.session.execute(
            select(DeadLetter)
            .order_by(DeadLetter.created_at.desc(), DeadLetter.id.desc())
            .limit(limit)
        )
        return result.scalars().all()

    async def get(self, letter_id: int) -> DeadLetter | None:
        return await self.session.get(DeadLetter, letter_id)

    async def delete(self, letter: DeadLetter) -> None:
        await self.session.delete(letter)
        await self.session.flush()

    async def requeue(self, letter: DeadLetter) -> IngestOutbox:
        """Puts the batch's work back in the outbox (tries counted afresh) and forgets the letter.

        The outbox row keeps the batch's own time, so the next sweep takes it at once.
        """
        row = IngestOutbox(
            vehicle_id=letter.vehicle_id,
            buckets=letter.buckets,
            created_at=letter.batch_created_at,
            attempts=0,
            backfill=letter.backfill,
        )
        self.session.add(row)
        await self.session.delete(letter)
        await self.session.flush()
        return row
