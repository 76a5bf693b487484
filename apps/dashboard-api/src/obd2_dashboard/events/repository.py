from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from obd2_dashboard.kit.db import utcnow
from obd2_dashboard.models import VehicleEvent


class VehicleEventRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self,
        *,
        vehicle_id: int,
        device_id: int | None,
        ts: int,
        kind: str,
        event_class: str,
        message: str,
    ) -> bool:
        """Stores the event unless it is stored already; whether it was new."""
        values = {
            "vehicle_id": vehicle_id,
            "device_id": device_id,
            "ts": ts,
            "kind": kind,
            "event_class": event_class,
            "message": message,
            "created_at": utcnow(),
        }
        dialect = postgresql if self.session.get_bind().dialect.name == "postgresql" else sqlite
        statement = dialect.insert(VehicleEvent).values(values).on_conflict_do_nothing()
        result = await self.session.execute(statement.returning(VehicleEvent.id))
        return result.first() is not None

    async def between(
        self, vehicle_id: int, start: int, end: int, limit: int
    ) -> Sequence[VehicleEvent]:
        result = await self.session.execute(
            select(VehicleEvent)
            .where(
                VehicleEvent.vehicle_id == vehicle_id,
                VehicleEvent.ts >= start,
                VehicleEvent.ts < end,
            )
            .order_by(VehicleEvent.ts, VehicleEvent.id)
            .limit(limit)
        )
        return result.scalars().all()
