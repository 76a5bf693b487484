"""Pipeline state read at scrape time from what every process shares (broker and database)."""

import asyncio
from datetime import datetime, timedelta

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from obd2_dashboard.health.repository import WalArchiver, wal_archiver
from obd2_dashboard.kit.broker import Broker
from obd2_dashboard.kit.db import utcnow
from obd2_dashboard.models import Device, IngestOutbox
from obd2_dashboard.telemetry import dead_letters
from obd2_dashboard.telemetry.streams import DEADLETTER_STREAM, WORK_GROUP, WORK_STREAM

DEVICE_ONLINE_WINDOW = timedelta(minutes=5)
_TIMEOUT_S = 2.0


async def pipeline_families(
    sessionmaker: async_sessionmaker[AsyncSession], broker: Broker
) -> list[Metric]:
    length = GaugeMetricFamily(
        "obd2_stream_length", "Entries in a broker stream", labels=["stream"]
    )
    lag = GaugeMetricFamily(
        "obd2_stream_lag_messages",
        "Work entries not yet delivered to the consumer group",
        labels=["stream", "group"],
    )
    pending = GaugeMetricFamily(
        "obd2_stream_pending_messages",
        "Work entries delivered but not acknowledged",
        labels=["stream", "group"],
    )
    families: list[Metric] = [length, lag, pending]
    stats_up = 1.0
    try:
        async with asyncio.timeout(_TIMEOUT_S):
            stats = await broker.group_stats(WORK_STREAM, WORK_GROUP)
            if stats is not None:
                length.add_metric([WORK_STREAM], stats.length)
                lag.add_metric([WORK_STREAM, WORK_GROUP], stats.lag)
                pending.add_metric([WORK_STREAM, WORK_GROUP], stats.pending)
            length.add_metric([DEADLETTER_STREAM], await broker.xlen(DEADLETTER_STREAM))
    except Exception:
        stats_up = 0.0
    try:
        async with asyncio.timeout(_TIMEOUT_S), sessionmaker() as session:
            backlog = await session.scalar(select(func.count()).select_from(IngestOutbox))
            online = await session.scalar(
                select(func.count())
                .select_from(Device)
                .where(Device.last_seen_at >= utcnow() - DEVICE_ONLINE_WINDOW)
            )
            dead = (await dead_letters.summary(session, newest=0)).count
        families.append(
            GaugeMetricFamily(
                "obd2_outbox_backlog",
                "Stored batches whose derived data (rollups, trips) is not done yet",
                value=float(backlog or 0),
            )
        )
        families.append(
            GaugeMetricFamily(
                "obd2_dead_letters",
                "Stored batches whose derived data the worker gave up on (dead letters)",
                value=float(dead),
            )
        )
        families.append(
            GaugeMetricFamily(
                "obd2_devices_online",
                "Devices heard from in the last 5 minutes",
                value=float(online or 0),
            )
        )
    except Exception:
        stats_up = 0.0
    families.append(
        GaugeMetricFamily(
            "obd2_pipeline_stats_up", "1 when the pipeline state could be read", value=stats_up
        )
    )
    families.extend(await wal_archiver_families(sessionmaker))
    return families


def _timestamp(moment: datetime | None) -> float:
    return moment.timestamp() if moment is not None else 0.0


async def wal_archiver_families(sessionmaker: async_sessionmaker[AsyncSession]) -> list[Metric]:
    """PostgreSQL's WAL archiving as the backups' alert rules read it; nothing on SQLite or
    when the database does not answer (obd2_dependency_up says so)."""
    archiver: WalArchiver | None
    try:
        async with asyncio.timeout(_TIMEOUT_S), sessionmaker() as session:
            archiver = await wal_archiver(session)
    except Exception:
        return []
    if archiver is None:
        return []
    return [
        GaugeMetricFamily(
            "obd2_wal_archiving_enabled",
            "1 when PostgreSQL's archive_mode is on",
            value=1.0 if archiver.enabled else 0.0,
        ),
        GaugeMetricFamily(
            "obd2_wal_archived_count",
            "WAL files archived since pg_stat_archiver was last reset",
            value=float(archiver.archived_count),
        ),
        GaugeMetricFamily(
            "obd2_wal_archive_failed_count",
            "Failed attempts to archive a WAL file since pg_stat_archiver was last reset",
            value=float(archiver.failed_count),
        ),
        GaugeMetricFamily(
            "obd2_wal_last_archived_timestamp_seconds",
            "When the last WAL file was archived (0: never)",
            value=_timestamp(archiver.last_archived_at),
        ),
        GaugeMetricFamily(
            "obd2_wal_last_failed_timestamp_seconds",
            "When archiving a WAL file last failed (0: never)",
            value=_timestamp(archiver.last_failed_at),
        ),
    ]


async def dead_letter_status(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> dict[str, object] | None:
    """The dead letters' count and the newest few, for the Status page; None when unreadable."""
    try:
        async with asyncio.timeout(_TIMEOUT_S), sessionmaker() as session:
            return (await dead_letters.summary(session)).as_json(whole_errors=False)
    except Exception:
        return None
