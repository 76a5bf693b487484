from collections.abc import Sequence

from sqlalchemy import ColumnElement, delete, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from obd2_dashboard.models import (
    DeadLetter,
    Device,
    Sample,
    ShareInvitation,
    User,
    Vehicle,
    VehicleShare,
)


def _visible_to(user_id: int) -> ColumnElement[bool]:
    shared = exists().where(VehicleShare.vehicle_id == Vehicle.id, VehicleShare.user_id == user_id)
    return or_(Vehicle.owner_id == user_id, shared)


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

    async def list_visible(self, user_id: int) -> Sequence[Vehicle]:
        result = await self.session.execute(
            select(Vehicle).where(_visible_to(user_id)).order_by(Vehicle.id)
        )
        return result.scalars().all()

    async def get_visible(self, user_id: int, vehicle_id: int) -> Vehicle | None:
        result = await self.session.execute(
            select(Vehicle).where(Vehicle.id == vehicle_id, _visible_to(user_id))
        )
        return result.scalar_one_or_none()

    async def shares(self, vehicle_id: int) -> Sequence[tuple[VehicleShare, User]]:
        result = await self.session.execute(
            select(VehicleShare, User)
            .join(User, User.id == VehicleShare.user_id)
            .where(VehicleShare.vehicle_id == vehicle_id)
            .order_by(User.email)
        )
        return [(share, user) for share, user in result]

    async def add_share(self, vehicle_id: int, user_id: int) -> VehicleShare:
        existing = await self.session.get(VehicleShare, (vehicle_id, user_id))
        if existing is not None:
            return existing
        share = VehicleShare(vehicle_id=vehicle_id, user_id=user_id)
        self.session.add(share)
        await self.session.flush()
        return share

    async def remove_share(self, vehicle_id: int, user_id: int) -> bool:
        result = await self.session.execute(
            delete(VehicleShare).where(
                VehicleShare.vehicle_id == vehicle_id, VehicleShare.user_id == user_id
            )
        )
        return bool(getattr(result, "rowcount", 0))

    async def is_shared_with_email(self, vehicle_id: int, email: str) -> bool:
        result = await self.session.execute(
            select(VehicleShare.user_id)
            .join(User, User.id == VehicleShare.user_id)
            .where(VehicleShare.vehicle_id == vehicle_id, User.email == email)
        )
        return result.first() is not None

    async def invitations(self, vehicle_id: int) -> Sequence[ShareInvitation]:
        result = await self.session.execute(
            select(ShareInvitation)
            .where(ShareInvitation.vehicle_id == vehicle_id)
            .order_by(ShareInvitation.email)
        )
        return result.scalars().all()

    async def invitations_for(self, email: str) -> Sequence[tuple[ShareInvitation, Vehicle, User]]:
        """Invitations addressed to ``email``, with their vehicle and who sent them."""
        result = await self.session.execute(
            select(ShareInvitation, Vehicle, User)
            .join(Vehicle, Vehicle.id == ShareInvitation.vehicle_id)
            .join(User, User.id == ShareInvitation.invited_by)
            .where(ShareInvitation.email == email)
            .order_by(ShareInvitation.id)
        )
        return [(invitation, vehicle, owner) for invitation, vehicle, owner in result]

    async def get_invitation(self, invitation_id: int) -> ShareInvitation | None:
        return await self.session.get(ShareInvitation, invitation_id)

    async def add_invitation(self, vehicle_id: int, invited_by: int, email: str) -> None:
        """Adds the invitation unless one for that email is pending (then it stays as it is)."""
        existing = await self.session.execute(
            select(ShareInvitation.id).where(
                ShareInvitation.vehicle_id == vehicle_id, ShareInvitation.email == email
            )
        )
        if existing.first() is not None:
            return
        self.session.add(ShareInvitation(vehicle_id=vehicle_id, invited_by=invited_by, email=email))
        await self.session.flush()

    async def delete_invitation(self, invitation: ShareInvitation) -> None:
        await self.session.delete(invitation)
        await self.session.flush()

    async def get(self, vehicle_id: int) -> Vehicle | None:
        return await self.session.get(Vehicle, vehicle_id)

    async def add(self, vehicle: Vehicle) -> Vehicle:
        self.session.add(vehicle)
        await self.session.flush()
        return vehicle

    async def delete(self, vehicle: Vehicle) -> None:
        # samples carry no foreign key (see models.sample), so they go explicitly.
        await self.session.execute(delete(Sample).where(Sample.vehicle_id == vehicle.id))
        # Work given up on for samples that are gone is nothing to retry.
        await self.session.execute(delete(DeadLetter).where(DeadLetter.vehicle_id == vehicle.id))
        await self.session.execute(delete(Device).where(Device.vehicle_id == vehicle.id))
        await self.session.delete(vehicle)
        await self.session.flush()

    async def fill_unset(
        self,
        vehicle_id: int,
        *,
        profile_name: str | None,
        fuel_type: str | None,
        weight_kg: float | None,
        volumetric_efficiency_pct: float | None,
    ) -> list[str]:
        """Sets each given setting where it is unset, in one statement per setting so that a
        concurrent user change is never overwritten; the names of those it set."""
        filled: list[str] = []
        for column, value in (
            (Vehicle.profile_name, profile_name),
            (Vehicle.weight_kg, weight_kg),
            (Vehicle.volumetric_efficiency_pct, volumetric_efficiency_pct),
        ):
            if value is None:
                continue
            result = await self.session.execute(
                update(Vehicle)
                .where(Vehicle.id == vehicle_id, column.is_(None))
                .values({column: value})
                .execution_options(synchronize_session=False)
            )
            if getattr(result, "rowcount", 0):
                filled.append(column.key)
        if fuel_type is not None:
            result = await self.session.execute(
                update(Vehicle)
                .where(Vehicle.id == vehicle_id, Vehicle.fuel_type_source == "default")
                .values(fuel_type=fuel_type, fuel_type_source="torque")
                .execution_options(synchronize_session=False)
            )
            if getattr(result, "rowcount", 0):
                filled.append("fuel_type")
        return filled
