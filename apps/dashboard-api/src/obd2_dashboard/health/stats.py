"""Gauges read at scrape time from the shared state (broker and database), not per process."""

import asyncio
import contextlib
from datetime import timedelta

from prometheus_client import Gauge
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from obd2_dashboard.kit.broker import Broker
from obd2_dashboard.kit.db import utcnow
from obd2_dashboard.models import Device, IngestOutbox
from obd2_dashboard.telemetry.streams import DEADLETTER_STREAM, WORK_GROUP, WORK_STREAM

DEVICE_ONLINE_WINDOW = timedelta(minutes=5)

STREAM_LENGTH = Gauge("obd2_stream_length", "Entries in a broker stream", ["stream"])
STREAM_PENDING = Gauge("obd2_stream_pending", "Delivered but unacknowledged work entries")
STREAM_LAG = Gauge("obd2_stream_lag", "Work entries not yet delivered to the worker group")
OUTBOX_BACKLOG = Gauge("obd2_outbox_backlog", "Stored batches whose derived data is not done")
DEVICES_ONLINE = Gauge("obd2_devices_online", "Devices heard from in the last 5 minutes")
PIPELINE_STATS_UP = Gauge("obd2_pipeline_stats_up", "1 when the pipeline gauges could be read")


async def refresh_pipeline_gauges(
    sessionmaker: async_sessionmaker[AsyncSession], broker: Broker
) -> None:
    ok = True
    try:
        async with asyncio.timeout(2):
            stats = await broker.group_stats(WORK_STREAM, WORK_GROUP)
            if stats is not None:
                STREAM_LENGTH.labels(WORK_STREAM).set(stats.length)
                STREAM_PENDING.set(stats.pending)
                STREAM_LAG.set(stats.lag)
            STREAM_LENGTH.labels(DEADLETTER_STREAM).set(await broker.xlen(DEADLETTER_STREAM))
    except Exception:
        ok = False
    try:
        async with asyncio.timeout(2), sessionmaker() as session:
            backlog = await session.scalar(select(func.count()).select_from(IngestOutbox))
            online = await session.scalar(
                select(func.count())
                .select_from(Device)
                .where(Device.last_seen_at >= utcnow() - DEVICE_ONLINE_WINDOW)
            )
            OUTBOX_BACKLOG.set(backlog or 0)
            DEVICES_ONLINE.set(online or 0)
    except Exception:
        ok = False
    with contextlib.suppress(Exception):
        PIPELINE_STATS_UP.set(1 if ok else 0)
