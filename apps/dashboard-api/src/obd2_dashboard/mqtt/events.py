"""Vehicle events (trips, DTCs) for MQTT, queued on a broker stream.

Any process may call these (the API when an agent reports DTCs, the worker when a trip ends);
the MQTT publisher in the worker consumes the stream in a consumer group, so each event is sent
once however many workers run, and an event queued while MQTT is down is sent when it is back.
"""

import logging
from typing import Any

from obd2_dashboard.kit.broker import Broker
from obd2_dashboard.mqtt.topics import event_payload

log = logging.getLogger("obd2_dashboard.mqtt")

MQTT_EVENTS_STREAM = "mqtt:events"
MQTT_EVENTS_GROUP = "mqtt-publishers"
MQTT_EVENTS_MAXLEN = 10_000


async def publish_vehicle_event(
    broker: Broker, vehicle_id: int, event_type: str, data: dict[str, Any]
) -> bool:
    """Queues ``{"type": event_type, "vehicle_id": …, **data}`` for ``<prefix>/<id>/events``.

    Best effort, like live fan-out: False (and a log line) when the broker is unavailable.
    """
    fields = {
        "vehicle_id": str(vehicle_id),
        "type": event_type,
        "payload": event_payload(event_type, vehicle_id, data),
    }
    try:
        await broker.xadd(MQTT_EVENTS_STREAM, fields, maxlen=MQTT_EVENTS_MAXLEN)
    except Exception as exc:
        log.warning("mqtt event not queued: %s", type(exc).__name__)
        return False
    return True


async def publish_trip_event(
    broker: Broker, vehicle_id: int, event_type: str, trip: dict[str, Any]
) -> bool:
    """``event_type`` is ``trip.started``, ``trip.updated``, ``trip.finished`` or
    ``trip.merged``; ``trip`` its summary (JSON-able; see ``trips.events``)."""
    return await publish_vehicle_event(broker, vehicle_id, event_type, {"trip": trip})


async def publish_dtc_event(
    broker: Broker,
    vehicle_id: int,
    code: str,
    kind: str,
    *,
    event_type: str = "dtc.new",
    description: str | None = None,
) -> bool:
    """``event_type`` is ``dtc.new`` or ``dtc.cleared``."""
    data: dict[str, Any] = {"code": code, "kind": kind}
    if description is not None:
        data["description"] = description
    return await publish_vehicle_event(broker, vehicle_id, event_type, data)
