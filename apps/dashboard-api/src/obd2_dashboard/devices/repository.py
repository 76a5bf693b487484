from collections.abc import Collection, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from obd2_dashboard.devices.values import ActiveDevice
from obd2_dashboard.kit.db import driver_connection
from obd2_dashboard.models import Device, Vehicle

_ACTIVE_DEVICES_PG = (
    "SELECT token_hash, id, vehicle_id, last_upload_at FROM devices "
    "WHERE token_hash = ANY($1::bytea[]) AND revoked_at IS NULL"
)


class DeviceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def list_for_vehicle(self, vehicle_id: int) -> Sequence[Device]:
        result = await self.session.execute(
            select(Device).where(Device.vehicle_id == vehicle_id).order_by(Device.id)
        )
        return result.scalars().all()

    async def get_by_name(self, vehicle_id: int, name: str) -> Device | None:
        """The vehicle's oldest device of this name."""
        result = await self.session.execute(
            select(Device)
            .where(Device.vehicle_id == vehicle_id, Device.name == name)
            .order_by(Device.id)
            .limit(1)
        )
        return result.scalar_one_or_none()

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

    async def active_by_token_hashes(
        self, token_hashes: Collection[bytes]
    ) -> dict[bytes, ActiveDevice]:
        if self.session.get_bind().dialect.name == "postgresql":
            # On the ingest path, once per transaction: straight on asyncpg, as the samples.
            connection = await driver_connection(self.session)
            rows = await connection.fetch(_ACTIVE_DEVICES_PG, list(token_hashes))
        else:
            result = await self.session.execute(
                select(
                    Device.token_hash, Device.id, Device.vehicle_id, Device.last_upload_at
                ).where(Device.token_hash.in_(list(token_hashes)), Device.revoked_at.is_(None))
            )
            rows = list(result)
        return {bytes(row[0]): ActiveDevice(row[1], row[2], row[3]) for row in rows}

    async def add(self, device: Device) -> Device:
        self.session.add(device)
        await self.session.flush()
        return device
