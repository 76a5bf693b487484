from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from obd2_dashboard.models import Device, Vehicle


class DeviceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def list_for_vehicle(self, vehicle_id: int) -> Sequence[Device]:
        result = await self.session.execute(
            select(Device).where(Device.vehicle_id == vehicle_id).order_by(Device.id)
        )
        return result.scalars().all()

    async def get(self, device_id: int) -> Device | None:
        return await self.session.get(Device, device_id)

    async def get_owned(self, owner_id: int, device_id: int) -> Device | None:
        result = await self.session.execute(
            select(Device)
            .join(Vehicle, Vehicle.id == Device.vehicle_id)
            .where(Device.id == device_id, Vehicle.owner_id == owner_id)
        )
        return result.scalar_one_or_none()

    async def get_active_by_token_hash(self, token_hash: bytes) -> Device | None:
        result = await self.session.execute(
            select(Device).where(Device.token_hash == token_hash, Device.revoked_at.is_(None))
        )
        return result.scalar_one_or_none()

    async def add(self, device: Device) -> Device:
        self.session.add(device)
        await self.session.flush()
        return device
