"""Trip events for MQTT, queued once the worker's transaction has committed.

``trip.started`` when a trip first appears, ``trip.updated`` when its figures change (at most once
per minute of driving while the car extends it, and whenever late samples change it),
``trip.finished`` once, when the join gap has passed after its end, and ``trip.merged`` when late
samples joined it into another trip. A finished trip that late samples join to a later one not
yet finished goes on as that one: it is told finished again when that one ends. Each event
carries the trip as the API lists it; ``trip.merged`` carries ``{"id", "merged_into"}``.
"""

from collections.abc import Sequence
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from obd2_dashboard.kit.broker import Broker
from obd2_dashboard.kit.db import after_commit
from obd2_dashboard.models import FuelType, Trip, Vehicle
from obd2_dashboard.mqtt.events import publish_trip_event
from obd2_dashboard.trips.repository import TripRepository
from obd2_dashboard.trips.schemas import TripRead
from obd2_dashboard.trips.service import TripChange


def trip_summary(trip: Trip, fuel_type: FuelType) -> dict[str, Any]:
    # Without in_progress: an event says what the trip is, not what its vehicle is doing now.
    return TripRead.of(trip, fuel_type).model_dump(mode="json", exclude={"in_progress"})


async def queue_trip_events(
    session: AsyncSession, broker: Broker, vehicle_id: int, changes: Sequence[TripChange]
) -> None:
    """Takes each changed trip's summary as this transaction leaves it, and queues the events
    after it commits (never when it rolls back)."""
    if not changes:
        return
    vehicle = await session.get(Vehicle, vehicle_id)
    if vehicle is None:
        return
    fuel_type = FuelType(vehicle.fuel_type)
    trips = {t.id: t for t in await TripRepository(session).get_many([c.trip_id for c in changes])}
    events: list[tuple[str, dict[str, Any]]] = []
    for change in changes:
        if change.kind == "trip.merged":
            events.append((change.kind, {"id": change.trip_id, "merged_into": change.into}))
        elif (trip := trips.get(change.trip_id)) is not None:
            events.append((change.kind, trip_summary(trip, fuel_type)))
    after_commit(session, partial(_send, broker, vehicle_id, events))


async def _send(broker: Broker, vehicle_id: int, events: list[tuple[str, dict[str, Any]]]) -> None:
    for kind, trip in events:
        await publish_trip_event(broker, vehicle_id, kind, trip)
