import logging
from collections.abc import Sequence

from prometheus_client import Counter

from obd2_dashboard.kit.broker import Breaker, Broker
from obd2_dashboard.live.events import LIVE_STREAM_MAXLEN, encode_batch, live_stream
from obd2_protocol import SampleFields

log = logging.getLogger("obd2_dashboard.live")

PUBLISH_FAILURES = Counter(
    "obd2_live_publish_failures_total", "Stored batches that could not be fanned out live"
)


class LivePublisher:
    """Puts stored samples on their vehicle's live stream; best effort, never blocks ingest."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.breaker = Breaker()

    async def publish(self, vehicle_id: int, samples: Sequence[SampleFields]) -> bool:
        if not samples:
            return True
        if self.breaker.is_open:
            PUBLISH_FAILURES.inc()
            return False
        try:
            await self.broker.xadd(
                live_stream(vehicle_id), encode_batch(samples), maxlen=LIVE_STREAM_MAXLEN
            )
        except Exception as exc:
            self.breaker.trip()
            PUBLISH_FAILURES.inc()
            log.warning("live fan-out unavailable: %s", type(exc).__name__)
            return False
        return True
