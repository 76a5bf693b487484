"""Deletes raw samples past their retention age, a small batch per transaction.

Each batch is its own short transaction over rows found through the BRIN index on ts, so
ingest (which only inserts new rows) never waits on it. Rollups and trips are kept.
"""

import logging
import time
from collections.abc import Callable

from prometheus_client import Counter, Gauge
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from obd2_dashboard.kit.db import session_scope

log = logging.getLogger("obd2_dashboard.retention")

DELETED = Counter("obd2_retention_deleted_samples_total", "Raw samples deleted for age")
LAST_RUN = Gauge("obd2_retention_last_run_timestamp_seconds", "End of the last retention run")
DAY_MS = 86_400_000


async def _delete_batch(session: AsyncSession, cutoff_ms: int, batch: int) -> int:
    if session.get_bind().dialect.name == "postgresql":
        statement = (
            "DELETE FROM samples WHERE ctid = ANY(ARRAY("
            "SELECT ctid FROM samples WHERE ts < :cutoff LIMIT :batch))"
        )
    else:
        statement = (
            "DELETE FROM samples WHERE rowid IN ("
            "SELECT rowid FROM samples WHERE ts < :cutoff LIMIT :batch)"
        )
    result = await session.execute(text(statement), {"cutoff": cutoff_ms, "batch": batch})
    return int(getattr(result, "rowcount", 0) or 0)


async def count_older(sessionmaker: async_sessionmaker[AsyncSession], cutoff_ms: int) -> int:
    async with sessionmaker() as session:
        result = await session.execute(
            text("SELECT count(*) FROM samples WHERE ts < :cutoff"), {"cutoff": cutoff_ms}
        )
        return int(result.scalar_one())


async def prune_samples(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    older_than_days: float,
    batch: int = 10_000,
    now_ms: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Deletes samples older than the age; returns how many."""
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    cutoff = now_ms - int(older_than_days * DAY_MS)
    total = 0
    while True:
        async with session_scope(sessionmaker) as session:
            deleted = await _delete_batch(session, cutoff, batch)
        total += deleted
        DELETED.inc(deleted)
        if progress is not None:
            progress(total)
        if deleted < batch:
            break
    LAST_RUN.set_to_current_time()
    if total:
        log.info("retention deleted samples", extra={"deleted": total, "cutoff_ms": cutoff})
    return total
