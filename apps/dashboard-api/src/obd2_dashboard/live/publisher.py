import logging
from collections.abc import Sequence

from prometheus_client import Counter

from obd2_dashboard.kit.broker import Breaker, Broker, StreamAppend
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
        return await self.publish_many([(vehicle_id, samples)])

    async def publish_many(self, batches: Sequence[tuple[int, Sequence[SampleFields]]]) -> bool:
        """Each (vehicle id, samples) batch on its vehicle's stream, in order, one round trip."""
        batches = [(vehicle_id, samples) for vehicle_id, samples in batches if samples]
        if not batches:
            return True
        if self.breaker.is_open:
            self._lost(batches)
            return False
        gaps = sorted(self._gaps)
        try:
            await self.broker.xadd_many(
                [_append(vehicle_id, gap_entry()) for vehicle_id in gaps]
                + [_append(vehicle_id, encode_batch(samples)) for vehicle_id, samples in batches]
            )
        except Exception as exc:
            self.breaker.trip()
            self._lost(batches)
            log.warning("live fan-out unavailable: %s", type(exc).__name__)
            return False
        self._gaps.difference_update(gaps)
        return True

    def _lost(self, batches: Sequence[tuple[int, Sequence[SampleFields]]]) -> None:
        PUBLISH_FAILURES.inc(len(batches))
        self._gaps.update(vehicle_id for vehicle_id, _ in batches)


def _append(vehicle_id: int, fields: dict[str, str]) -> StreamAppend:
    return StreamAppend(live_stream(vehicle_id), fields, LIVE_STREAM_MAXLEN, LIVE_STREAM_MAX_AGE_MS)
