import logging
from collections.abc import Sequence

from prometheus_client import Counter

from obd2_dashboard.kit.broker import Breaker, Broker
from obd2_dashboard.live.events import (
    LIVE_STREAM_MAX_AGE_MS,
    LIVE_STREAM_MAXLEN,
    encode_batch,
    gap_entry,
    live_stream,
)
from obd2_protocol import SampleFields

log = logging.getLogger("obd2_dashboard.live")

PUBLISH_FAILURES = Counter(
    "obd2_live_publish_failures_total", "Stored batches that could not be fanned out live"
)


class LivePublisher:
    """Puts stored samples on their vehicle's live stream; best effort, never blocks ingest.

    A batch that could not be put on its stream is never sent later (its viewers have moved
    on), but its vehicle's stream gets a gap marker before the next entry this process writes,
    so viewers are told (a ``reset``) instead of missing samples without knowing.
    """

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.breaker = Breaker()
        self._gaps: set[int] = set()

    async def publish(self, vehicle_id: int, samples: Sequence[SampleFields]) -> bool:
        if not samples:
            return True
        if self.breaker.is_open:
            PUBLISH_FAILURES.inc()
            self._gaps.add(vehicle_id)
            return False
        try:
            await self._mark_gaps()
            await self.broker.xadd(
                live_stream(vehicle_id),
                encode_batch(samples),
                maxlen=LIVE_STREAM_MAXLEN,
                max_age_ms=LIVE_STREAM_MAX_AGE_MS,
            )
        except Exception as exc:
            self.breaker.trip()
            PUBLISH_FAILURES.inc()
            self._gaps.add(vehicle_id)
            log.warning("live fan-out unavailable: %s", type(exc).__name__)
            return False
        return True

    async def _mark_gaps(self) -> None:
        for vehicle_id in sorted(self._gaps):
            await self.broker.xadd(
                live_stream(vehicle_id),
                gap_entry(),
                maxlen=LIVE_STREAM_MAXLEN,
                max_age_ms=LIVE_STREAM_MAX_AGE_MS,
            )
            self._gaps.discard(vehicle_id)
