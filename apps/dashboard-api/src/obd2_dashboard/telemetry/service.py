import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from obd2_dashboard.kit.broker import Breaker, Broker, StreamAppend
from obd2_dashboard.live.publisher import LivePublisher
from obd2_dashboard.models import ROLLUP_15M_BUCKET_MS, ROLLUP_BUCKET_MS, User
from obd2_dashboard.pids import service as pids
from obd2_dashboard.presence.state import Thresholds
from obd2_dashboard.telemetry.repository import SampleRepository
from obd2_dashboard.telemetry.streams import (
    WORK_STREAM,
    WORK_STREAM_MAX_AGE_MS,
    WORK_STREAM_MAXLEN,
)
from obd2_dashboard.telemetry.values import Bucket
from obd2_dashboard.vehicles.service import get_vehicle
from obd2_protocol import SampleFields

log = logging.getLogger("obd2_dashboard.telemetry")

# Spooled data may be weeks old; a clock this far ahead is wrong, not early.
MAX_FUTURE_MS = 24 * 3600 * 1000
MAX_HISTORY_POINTS = 10_000
# Ranges whose buckets are at least this wide read the per-minute rollups.
ROLLUP_MIN_BUCKET_MS = ROLLUP_BUCKET_MS
# The quarter-hour tier answers when its buckets are at most this much wider than minute ones
# would be (a month at 1 000 points: 45-minute buckets from 2 880 rows, not 44-minute ones from
# 43 200); below that the minute tier keeps the resolution asked for.
COARSER_TIER_MAX_WIDENING = 1.25

INGESTED = Counter("obd2_ingest_samples_total", "Samples received", ["result"])
BATCHES = Counter("obd2_ingest_batches_total", "Batches stored", ["transport"])


class InvalidBatchError(Exception):
    pass


class UnknownPidError(Exception):
    def __init__(self, pid: str) -> None:
        super().__init__(f"unknown PID {pid!r}")


async def check_pids(session: AsyncSession, vehicle_id: int, names: Sequence[str]) -> None:
    """UnknownPidError for a name neither in the PID table nor among the vehicle's PIDs."""
    unknown = await pids.unknown_names(session, vehicle_id, names)
    if unknown:
        raise UnknownPidError(unknown[0])


async def record_agent_status(
    session: AsyncSession,
    device_id: int,
    now: datetime,
    thresholds: Thresholds,
    agent_version: str,
    adapter_state: str,
) -> None:
    """An agent's status report: the device heard from ``now``, its adapter in this state."""
    await SampleRepository(session).touch_reported(
        device_id, now, thresholds, agent_version, adapter_state
    )


@dataclass(slots=True)
class Pipeline:
    """Where stored batches go after their commit: live viewers and the worker."""

    broker: Broker
    live: LivePublisher
    work_breaker: Breaker

    @classmethod
    def for_broker(cls, broker: Broker) -> "Pipeline":
        return cls(broker, LivePublisher(broker), Breaker())

    async def notify_work(self, outbox_ids: Sequence[int]) -> None:
        if self.work_breaker.is_open or not outbox_ids:
            return
        try:
            await self.broker.xadd_many(
                [
                    StreamAppend(
                        WORK_STREAM,
                        {"outbox": str(outbox_id)},
                        WORK_STREAM_MAXLEN,
                        WORK_STREAM_MAX_AGE_MS,
                    )
                    for outbox_id in outbox_ids
                ]
            )
        except Exception as exc:
            # The outbox rows stay; the worker's sweep picks them up.
            self.work_breaker.trip()
            log.warning("work stream unavailable: %s", type(exc).__name__)


def check_times(samples: Sequence[SampleFields], now_ms: int) -> None:
    limit = now_ms + MAX_FUTURE_MS
    if max((s.ts for s in samples), default=0) <= limit:
        return
    for index, sample in enumerate(samples):
        if sample.ts > limit:
            raise InvalidBatchError(
                f"samples[{index}].ts is more than 24 h in the future ({sample.ts})"
            )


def unique_by_seq(samples: Sequence[SampleFields]) -> Sequence[SampleFields]:
    """The first sample of each seq: a batch may repeat one, and stores it once."""
    if len({s.seq for s in samples}) == len(samples):
        return samples
    first: dict[int, SampleFields] = {}
    for sample in samples:
        first.setdefault(sample.seq, sample)
    return list(first.values())


def _tier_buckets(start: int, end: int, max_points: int, unit: int) -> tuple[int, int]:
    """The aligned start and the narrowest whole-unit width giving at most max_points."""
    aligned = start - start % unit
    return aligned, math.ceil(math.ceil((end - aligned) / max_points) / unit) * unit


@dataclass(frozen=True, slots=True)
class HistoryRange:
    source: str
    width: int
    buckets: list[Bucket]


async def history(
    session: AsyncSession,
    user: User,
    vehicle_id: int,
    *,
    pid: str,
    start: int,
    end: int,
    max_points: int,
) -> HistoryRange:
    vehicle = await get_vehicle(session, user, vehicle_id)
    await check_pids(session, vehicle.id, [pid])
    width = max(1, math.ceil((end - start) / max_points))
    repo = SampleRepository(session)
    if width >= ROLLUP_MIN_BUCKET_MS:
        # Whole rollup rows, aligned to the tier, so every rollup falls in exactly one bucket.
        tier, aligned, width = "1m", *_tier_buckets(start, end, max_points, ROLLUP_BUCKET_MS)
        quarter_start, quarter_width = _tier_buckets(start, end, max_points, ROLLUP_15M_BUCKET_MS)
        if quarter_width <= width * COARSER_TIER_MAX_WIDENING:
            tier, aligned, width = "15m", quarter_start, quarter_width
        buckets = await repo.history_rollup(vehicle.id, pid, aligned, end, width, tier=tier)
        return HistoryRange("rollup", width, buckets)
    return HistoryRange("raw", width, await repo.history_raw(vehicle.id, pid, start, end, width))


async def pids_with_samples(
    session: AsyncSession, vehicle_id: int, pids: Sequence[str], start: int, end: int
) -> list[str]:
    """Which of ``pids`` the vehicle has samples of in [start, end), in the order given."""
    return await SampleRepository(session).pids_present(vehicle_id, pids, start, end)


async def others_running(
    session: AsyncSession, vehicle_id: int, device_id: int, start: int, end: int
) -> bool:
    """Whether another device of the vehicle stored RPM or SPEED in [start, end]."""
    return await SampleRepository(session).others_running(vehicle_id, device_id, start, end)


async def stored_by_others(
    session: AsyncSession,
    vehicle_id: int,
    device_id: int,
    start: int,
    end: int,
    pids: Sequence[str],
) -> set[tuple[int, str]]:
    """The (ts, pid) readings in [start, end] that other devices of the vehicle stored."""
    return await SampleRepository(session).stored_by_others(vehicle_id, device_id, start, end, pids)


async def raw_buckets(
    session: AsyncSession, vehicle_id: int, pid: str, start: int, end: int, width: int
) -> list[Bucket]:
    """A PID's raw samples in [start, end) in buckets of ``width`` ms (min, max, mean, count)."""
    return await SampleRepository(session).history_raw(vehicle_id, pid, start, end, width)


async def rollup_buckets(
    session: AsyncSession, vehicle_id: int, pid: str, start: int, end: int, width: int
) -> list[Bucket]:
    """The same from the per-minute rollups (kept after retention deletes the raw rows)."""
    return await SampleRepository(session).history_rollup(vehicle_id, pid, start, end, width)
