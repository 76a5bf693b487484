from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from obd2_dashboard.models import User, Vehicle


class PreferenceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def owner_unit_system(self, vehicle_id: int) -> str | None:
        result = await self.session.execute(
            select(User.unit_system)
            .join(Vehicle, Vehicle.owner_id == User.id)
            .where(Vehicle.id == vehicle_id)
        )
        return result.scalar_one_or_none()
