from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from obd2_dashboard.models import Device, Sample, Vehicle


class VehicleRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def list_owned(self, owner_id: int) -> Sequence[Vehicle]:
        result = await self.session.execute(
            select(Vehicle).where(Vehicle.owner_id == owner_id).order_by(Vehicle.id)
        )
        return result.scalars().all()

    async def get_owned(self, owner_id: int, vehicle_id: int) -> Vehicle | None:
        result = await self.session.execute(
            select(Vehicle).where(Vehicle.id == vehicle_id, Vehicle.owner_id == owner_id)
        )
        return result.scalar_one_or_none()

    async def get(self, vehicle_id: int) -> Vehicle | None:
        return await self.session.get(Vehicle, vehicle_id)

    async def add(self, vehicle: Vehicle) -> Vehicle:
        self.session.add(vehicle)
        await self.session.flush()
        return vehicle

    async def delete(self, vehicle: Vehicle) -> None:
        # samples carry no foreign key (see models.sample), so they go explicitly.
        await self.session.execute(delete(Sample).where(Sample.vehicle_id == vehicle.id))
        await self.session.execute(delete(Device).where(Device.vehicle_id == vehicle.id))
        await self.session.delete(vehicle)
        await self.session.flush()
