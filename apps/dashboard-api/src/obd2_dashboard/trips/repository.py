from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from obd2_dashboard.models import Trip, TripPoint
from obd2_dashboard.trips.segmenter import TRIP_PIDS

# Namespace of the per-vehicle advisory lock (high 32 bits; the vehicle id fills the low ones).
_LOCK_NAMESPACE = 0x54524950 << 32  # "TRIP"
STREAM_CHUNK = 10_000

_TRIP_SAMPLES = text(
    "SELECT ts, pid, value FROM samples WHERE vehicle_id = :vehicle_id "
    "AND pid IN :pids AND ts >= :start AND ts <= :end ORDER BY ts, pid, value"
).bindparams(bindparam("pids", value=list(TRIP_PIDS), expanding=True))

# Postgres: a window's rows as three arrays in one row; asyncpg decodes arrays in C, about twice
# as fast as one result row per sample.
_TRIP_SAMPLE_ARRAYS = text(
    "SELECT array_agg(ts ORDER BY ts, pid, value), array_agg(pid ORDER BY ts, pid, value), "
    "array_agg(value ORDER BY ts, pid, value) FROM samples WHERE vehicle_id = :vehicle_id "
    "AND pid = ANY(CAST(:pids AS text[])) AND ts >= :start AND ts < :end"
)
ARRAY_WINDOW_MS = 10 * 60_000

_MINUTE_COUNTS = text(
    "SELECT ts - ts % 60000, count(*), "
    "sum(CASE WHEN pid IN ('GPS_LAT', 'GPS_LON') THEN 1 ELSE 0 END) FROM samples "
    "WHERE vehicle_id = :vehicle_id AND pid IN :pids AND ts >= :start AND ts <= :end "
    "GROUP BY ts - ts % 60000"
).bindparams(bindparam("pids", value=list(TRIP_PIDS), expanding=True))

_RUNNING_OUTSIDE = text(
    "SELECT 1 FROM samples WHERE vehicle_id = :vehicle_id AND pid IN ('RPM', 'SPEED') "
    "AND value > 0 AND ts >= :start AND ts <= :end AND (ts < :inside_start OR ts > :inside_end) "
    "LIMIT 1"
)

_COUNT_TRIP_SAMPLES = text(
    "SELECT count(*) FROM samples WHERE vehicle_id = :vehicle_id "
    "AND pid IN :pids AND ts >= :start AND ts <= :end"
).bindparams(bindparam("pids", value=list(TRIP_PIDS), expanding=True))


class TripRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_vehicle(self, vehicle_id: int) -> None:
        """Serialises trip recomputation per vehicle until the transaction ends.

        An advisory lock rather than a row lock on the vehicle: ingest updates that row, and it
        must never wait for the worker. SQLite has one writer at a time already.
        """
        if self.session.get_bind().dialect.name != "postgresql":
            return
        key = _LOCK_NAMESPACE | (vehicle_id & 0xFFFFFFFF)
        await self.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})

    async def near(self, vehicle_id: int, start: int, end: int) -> Sequence[Trip]:
        """Trips that touch [start, end), oldest first, with their segmenter state."""
        result = await self.session.execute(
            select(Trip)
            .options(undefer(Trip.state))
            .where(Trip.vehicle_id == vehicle_id, Trip.end_ts >= start, Trip.start_ts < end)
            .order_by(Trip.start_ts, Trip.id)
        )
        return result.scalars().all()

    async def count_samples(self, vehicle_id: int, start: int, end: int) -> int:
        """How many samples of the trip PIDs lie in [start, end]."""
        result = await self.session.execute(
            _COUNT_TRIP_SAMPLES, {"vehicle_id": vehicle_id, "start": start, "end": end}
        )
        return int(result.scalar_one())

    async def minute_counts(
        self, vehicle_id: int, start: int, end: int
    ) -> dict[int, tuple[int, int]]:
        """Per minute start: how many samples of the trip PIDs lie in [start, end], and how
        many of them are GPS readings."""
        result = await self.session.execute(
            _MINUTE_COUNTS, {"vehicle_id": vehicle_id, "start": start, "end": end}
        )
        return {int(minute): (int(n), int(gps)) for minute, n, gps in result}

    async def running_outside(
        self, vehicle_id: int, start: int, end: int, inside: tuple[int, int]
    ) -> bool:
        """Whether a sample of the car in use (RPM or SPEED > 0) lies in [start, end] but
        outside [inside]."""
        result = await self.session.execute(
            _RUNNING_OUTSIDE,
            {
                "vehicle_id": vehicle_id,
                "start": start,
                "end": end,
                "inside_start": inside[0],
                "inside_end": inside[1],
            },
        )
        return result.first() is not None

    async def stream_samples(
        self, vehicle_id: int, start: int, end: int, pids: Sequence[str] = TRIP_PIDS
    ) -> AsyncIterator[Sequence[Any]]:
        """The samples of ``pids`` (trip PIDs) in [start, end] in time order, a chunk of rows
        at a time."""
        if self.session.get_bind().dialect.name == "postgresql":
            for window in range(start, end + 1, ARRAY_WINDOW_MS):
                result = await self.session.execute(
                    _TRIP_SAMPLE_ARRAYS,
                    {
                        "vehicle_id": vehicle_id,
                        "pids": list(pids),
                        "start": window,
                        "end": min(window + ARRAY_WINDOW_MS, end + 1),
                    },
                )
                tss, pids, values = result.one()
                if tss:
                    yield list(zip(tss, pids, values, strict=True))
            return
        statement = _TRIP_SAMPLES.bindparams(
            vehicle_id=vehicle_id, start=start, end=end, pids=list(pids)
        )
        stream = await self.session.stream(statement.execution_options(yield_per=STREAM_CHUNK))
        async for partition in stream.partitions(STREAM_CHUNK):
            yield partition

    async def save(self, trip: Trip) -> Trip:
        self.session.add(trip)
        await self.session.flush()
        return trip

    async def delete_many(self, ids: Sequence[int]) -> None:
        if ids:
            await self.session.execute(delete(TripPoint).where(TripPoint.trip_id.in_(ids)))
            await self.session.execute(delete(Trip).where(Trip.id.in_(ids)))

    async def clear_points(self, trip_id: int) -> None:
        await self.session.execute(delete(TripPoint).where(TripPoint.trip_id == trip_id))

    async def add_points(self, trip_id: int, points: Sequence[tuple[int, float, float]]) -> None:
        if points:
            await self.session.execute(
                insert(TripPoint),
                [{"trip_id": trip_id, "ts": ts, "lat": lat, "lon": lon} for ts, lat, lon in points],
            )

    async def page(
        self,
        vehicle_id: int,
        *,
        start_from: int | None,
        start_to: int | None,
        before: tuple[int, int] | None,
        limit: int,
    ) -> Sequence[Trip]:
        """Newest first by (start_ts, id); ``before`` is the last row of the previous page."""
        query = select(Trip).where(Trip.vehicle_id == vehicle_id)
        if start_from is not None:
            query = query.where(Trip.start_ts >= start_from)
        if start_to is not None:
            query = query.where(Trip.start_ts < start_to)
        if before is not None:
            query = query.where(tuple_(Trip.start_ts, Trip.id) < tuple_(*before))
        query = query.order_by(Trip.start_ts.desc(), Trip.id.desc()).limit(limit)
        return (await self.session.execute(query)).scalars().all()

    async def started_between(self, vehicle_id: int, start: int, end: int) -> Sequence[Trip]:
        """The vehicle's trips that started in [start, end), oldest first."""
        result = await self.session.execute(
            select(Trip)
            .where(Trip.vehicle_id == vehicle_id, Trip.start_ts >= start, Trip.start_ts < end)
            .order_by(Trip.start_ts, Trip.id)
        )
        return result.scalars().all()

    async def vehicles_with_unfinished(self, ended_before: int) -> list[int]:
        result = await self.session.execute(
            select(Trip.vehicle_id)
            .where(Trip.finished_at.is_(None), Trip.end_ts < ended_before)
            .distinct()
            .order_by(Trip.vehicle_id)
        )
        return [int(v) for v in result.scalars()]

    async def mark_finished(
        self, vehicle_id: int, ended_before: int, at: datetime
    ) -> Sequence[Trip]:
        """Sets ``finished_at`` on the vehicle's unfinished trips that ended before the given
        time; returns exactly those this statement changed (another worker's are not)."""
        result = await self.session.execute(
            update(Trip)
            .where(
                Trip.vehicle_id == vehicle_id,
                Trip.finished_at.is_(None),
                Trip.end_ts < ended_before,
            )
            .values(finished_at=at)
            .returning(Trip.id)
        )
        ids = [int(i) for i in result.scalars()]
        return await self.get_many(ids)

    async def mark_finished_ids(self, ids: Sequence[int], ended_before: int, at: datetime) -> None:
        """Sets ``finished_at`` on those of the given trips that are unfinished and ended before
        the given time."""
        if ids:
            await self.session.execute(
                update(Trip)
                .where(Trip.id.in_(ids), Trip.finished_at.is_(None), Trip.end_ts < ended_before)
                .values(finished_at=at)
            )

    async def get_many(self, ids: Sequence[int]) -> Sequence[Trip]:
        if not ids:
            return []
        result = await self.session.execute(
            select(Trip)
            .where(Trip.id.in_(ids))
            .order_by(Trip.start_ts, Trip.id)
            .execution_options(populate_existing=True)
        )
        return result.scalars().all()

    async def get(self, vehicle_id: int, trip_id: int) -> Trip | None:
        result = await self.session.execute(
            select(Trip).where(Trip.id == trip_id, Trip.vehicle_id == vehicle_id)
        )
        return result.scalar_one_or_none()

    async def points(self, trip_id: int) -> Sequence[TripPoint]:
        result = await self.session.execute(
            select(TripPoint).where(TripPoint.trip_id == trip_id).order_by(TripPoint.ts)
        )
        return result.scalars().all()
