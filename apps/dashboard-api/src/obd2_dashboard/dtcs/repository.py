from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from obd2_dashboard.models import Device, DeviceCommand, VehicleDtc


class DtcRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def active(self, vehicle_id: int) -> Sequence[VehicleDtc]:
        result = await self.session.execute(
            select(VehicleDtc)
            .where(VehicleDtc.vehicle_id == vehicle_id, VehicleDtc.cleared_at.is_(None))
            .with_for_update()
        )
        return result.scalars().all()

    async def history(self, vehicle_id: int, limit: int) -> Sequence[VehicleDtc]:
        result = await self.session.execute(
            select(VehicleDtc)
            .where(VehicleDtc.vehicle_id == vehicle_id)
            # Active codes first, then the most recently seen.
            .order_by(VehicleDtc.cleared_at.is_not(None), VehicleDtc.last_seen.desc())
            .limit(limit)
        )
        return result.scalars().all()

    async def add(self, dtc: VehicleDtc) -> None:
        self.session.add(dtc)
        await self.session.flush()


class CommandRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, command: DeviceCommand) -> DeviceCommand:
        self.session.add(command)
        await self.session.flush()
        return command

    async def get(self, command_id: int) -> DeviceCommand | None:
        return await self.session.get(DeviceCommand, command_id)

    async def for_vehicle(self, vehicle_id: int, limit: int) -> Sequence[DeviceCommand]:
        result = await self.session.execute(
            select(DeviceCommand)
            .where(DeviceCommand.vehicle_id == vehicle_id)
            .order_by(DeviceCommand.id.desc())
            .limit(limit)
        )
        return result.scalars().all()

    async def due(
        self, device_id: int, now: datetime, resend_after: timedelta
    ) -> Sequence[DeviceCommand]:
        """Commands to send now: never sent, or sent long ago without an answer."""
        result = await self.session.execute(
            select(DeviceCommand)
            .where(
                DeviceCommand.device_id == device_id,
                DeviceCommand.completed_at.is_(None),
                or_(
                    DeviceCommand.sent_at.is_(None),
                    DeviceCommand.sent_at < now - resend_after,
                ),
            )
            .order_by(DeviceCommand.id)
        )
        return result.scalars().all()

    async def mark_sent(self, ids: Sequence[int], now: datetime) -> None:
        await self.session.execute(
            update(DeviceCommand).where(DeviceCommand.id.in_(ids)).values(sent_at=now)
        )

    async def active_device_ids(self, vehicle_id: int) -> Sequence[int]:
        result = await self.session.execute(
            select(Device.id)
            .where(Device.vehicle_id == vehicle_id, Device.revoked_at.is_(None))
            .order_by(Device.last_seen_at.desc().nulls_last(), Device.id.desc())
        )
        return result.scalars().all()
