from fastapi import FastAPI
from sqlalchemy import text

from obd2_dashboard.kit.db import session_scope
from obd2_dashboard.telemetry.repository import OutboxRepository
from obd2_dashboard.telemetry.worker import process_outbox


async def drain_outbox(app: FastAPI) -> None:
    """Does the worker's job for every pending batch (as the sweep would)."""
    async with session_scope(app.state.obd2.sessionmaker) as session:
        rows = await session.execute(text("SELECT id FROM ingest_outbox"))
        await process_outbox(session, [int(r[0]) for r in rows])
        assert await OutboxRepository(session).count() == 0


async def rollups_match_raw(app: FastAPI) -> list[tuple[object, ...]]:
    """Rows where the stored rollups (both tiers) differ from a recomputation from raw samples."""
    mismatches: list[tuple[object, ...]] = []
    async with app.state.obd2.sessionmaker() as session:
        for table, width in (("sample_rollups_1m", 60_000), ("sample_rollups_15m", 900_000)):
            result = await session.execute(
                text(
                    f"WITH raw AS (SELECT vehicle_id, pid, ts - ts % {width} AS bucket_ts, "
                    "count(*) AS c, min(value) AS lo, max(value) AS hi, avg(value) AS mean "
                    f"FROM samples GROUP BY vehicle_id, pid, ts - ts % {width}) "
                    f"SELECT '{table}', raw.vehicle_id, raw.pid, raw.bucket_ts, raw.c, r.count "
                    f"FROM raw LEFT JOIN {table} r ON r.vehicle_id = raw.vehicle_id "
                    "AND r.pid = raw.pid AND r.bucket_ts = raw.bucket_ts "
                    "WHERE r.count IS NULL OR r.count <> raw.c OR r.min <> raw.lo "
                    "OR r.max <> raw.hi OR abs(r.avg - raw.mean) > 1e-9"
                )
            )
            mismatches += [tuple(row) for row in result]
    return mismatches
