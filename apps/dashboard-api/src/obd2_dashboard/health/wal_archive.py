"""What /metrics says about PostgreSQL's WAL archiving (pgBackRest's archive_command).

Read from ``pg_stat_archiver``, which any role may read, at each scrape; nothing on SQLite. The
alert "WAL archiving failing" needs no state of ours: a failure newer than the last success, or
no success for longer than a few ``archive_timeout`` while archiving is on.
"""

import asyncio
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class ArchiverStatus:
    enabled: bool
    archived_count: int
    failed_count: int
    last_archived_timestamp: float
    last_failed_timestamp: float


async def read_archiver(engine: AsyncEngine) -> ArchiverStatus | None:
    """pg_stat_archiver and archive_mode; None on SQLite or when PostgreSQL does not answer."""
    if engine.dialect.name != "postgresql":
        return None
    try:
        async with asyncio.timeout(_TIMEOUT_S), engine.connect() as connection:
            mode = (await connection.execute(text("SHOW archive_mode"))).scalar_one()
            row = (
                await connection.execute(
                    text(
                        "SELECT archived_count, failed_count, "
                        "coalesce(extract(epoch FROM last_archived_time), 0), "
                        "coalesce(extract(epoch FROM last_failed_time), 0) "
                        "FROM pg_stat_archiver"
                    )
                )
            ).one()
    except Exception:  # a slow or absent server: the readiness metrics report it
        return None
    return ArchiverStatus(
        enabled=str(mode) in ("on", "always"),
        archived_count=int(row[0]),
        failed_count=int(row[1]),
        last_archived_timestamp=float(row[2]),
        last_failed_timestamp=float(row[3]),
    )


def archiver_families(status: ArchiverStatus | None) -> list[Metric]:
    if status is None:
        return []
    gauges = [
        ("obd2_wal_archiving_enabled", "1 when PostgreSQL's archive_mode is on", status.enabled),
        ("obd2_wal_archived_segments", "WAL segments archived since the statistics reset",
         status.archived_count),
        ("obd2_wal_archive_failures", "Failed WAL archive attempts since the statistics reset",
         status.failed_count),
        ("obd2_wal_last_archived_timestamp_seconds", "When a WAL segment was last archived "
         "(0: never)", status.last_archived_timestamp),
        ("obd2_wal_last_archive_failure_timestamp_seconds", "When archiving a WAL segment last "
         "failed (0: never)", status.last_failed_timestamp),
    ]  # fmt: skip
    return [GaugeMetricFamily(name, doc, value=float(value)) for name, doc, value in gauges]
