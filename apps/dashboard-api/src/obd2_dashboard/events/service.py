"""Vehicle events: what a device told about the vehicle at an instant (Torque's notices)."""

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from obd2_dashboard.events.repository import VehicleEventRepository
from obd2_dashboard.models import User, VehicleEvent
from obd2_dashboard.vehicles.service import get_vehicle

MAX_MESSAGE = 1000
MAX_EVENT_CLASS = 200
MAX_EVENTS = 1000


def _printable(text: str) -> str:
    return "".join(ch for ch in text if ch.isprintable()).strip()


async def record_notice(
    session: AsyncSession,
    *,
    vehicle_id: int,
    device_id: int | None,
    ts: int,
    message: str,
    event_class: str,
) -> bool:
    """Keeps a notice (printable text, cut to the columns' lengths); False if it was stored
    already (an upload sent again)."""
    return await VehicleEventRepository(session).add(
        vehicle_id=vehicle_id,
        device_id=device_id,
        ts=ts,
        kind="notice",
        event_class=_printable(event_class)[:MAX_EVENT_CLASS],
        message=_printable(message)[:MAX_MESSAGE],
    )


async def list_events(
    session: AsyncSession, user: User, vehicle_id: int, *, start: int, end: int, limit: int
) -> Sequence[VehicleEvent]:
    vehicle = await get_vehicle(session, user, vehicle_id)
    return await VehicleEventRepository(session).between(vehicle.id, start, end, limit)
