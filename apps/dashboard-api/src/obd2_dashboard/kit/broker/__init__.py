"""The message broker behind live fan-out, background work and shared counters.

``RedisBroker`` (``redis.py``) is the production one; ``EmbeddedBroker`` (``memory.py``) keeps
the same contract (``base.py``) inside one process so that the demo and small installs need no
Redis. ``backoff.py`` holds the failure counters a broker counts, ``breaker.py`` the circuit
breaker callers put in front of it, ``stream_ids.py`` the stream id format. This module
re-exports the public names and picks a broker from the settings (``make_broker``).
"""

from obd2_dashboard.kit.broker.backoff import Backoff
from obd2_dashboard.kit.broker.base import (
    Broker,
    BrokerKind,
    BrokerUnavailableError,
    ClaimedEntry,
    GroupStats,
    StreamAppend,
    StreamEntry,
)
from obd2_dashboard.kit.broker.breaker import Breaker
from obd2_dashboard.kit.broker.memory import EmbeddedBroker
from obd2_dashboard.kit.broker.redis import RedisBroker
from obd2_dashboard.kit.broker.stream_ids import (
    MAX_STREAM_ID_PART,
    format_stream_id,
    parse_stream_id,
)

__all__ = [
    "MAX_STREAM_ID_PART",
    "Backoff",
    "Breaker",
    "Broker",
    "BrokerKind",
    "BrokerUnavailableError",
    "ClaimedEntry",
    "EmbeddedBroker",
    "GroupStats",
    "RedisBroker",
    "StreamAppend",
    "StreamEntry",
    "format_stream_id",
    "make_broker",
    "parse_stream_id",
]


def make_broker(url: str | None, prefix: str) -> Broker:
    if url is None:
        return EmbeddedBroker(prefix)
    return RedisBroker(url, prefix)
