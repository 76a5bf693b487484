from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from obd2_dashboard.auth.service import normalize_email
from obd2_dashboard.models import FuelType, ShareInvitation, User, Vehicle, VehicleShare
from obd2_dashboard.vehicles.repository import VehicleRepository
from obd2_dashboard.vehicles.schemas import VehicleCreate, VehicleUpdate


class VehicleNotFoundError(Exception):
    def __init__(self, vehicle_id: int) -> None:
        super().__init__(f"vehicle {vehicle_id} not found")


class VehicleReadOnlyError(Exception):
    def __init__(self, vehicle_id: int) -> None:
        super().__init__(f"vehicle {vehicle_id} is shared with you read-only")


class ShareError(Exception):
    pass


async def list_vehicles(session: AsyncSession, user: User) -> Sequence[Vehicle]:
    return await VehicleRepository(session).list_visible(user.id)


async def get_vehicle(session: AsyncSession, user: User, vehicle_id: int) -> Vehicle:
    """A vehicle the user may read: their own, or one shared with them."""
    # Another user's vehicle is "not found", never "forbidden": ids reveal nothing.
    vehicle = await VehicleRepository(session).get_visible(user.id, vehicle_id)
    if vehicle is None:
        raise VehicleNotFoundError(vehicle_id)
    return vehicle


async def visible_vehicle(session: AsyncSession, user_id: int, vehicle_id: int) -> Vehicle | None:
    """The vehicle if the user may read it, else None (for streams that re-check access)."""
    return await VehicleRepository(session).get_visible(user_id, vehicle_id)


async def vehicle_by_id(session: AsyncSession, vehicle_id: int) -> Vehicle | None:
    """Any vehicle, whoever owns it: for operator commands, never for a user's request."""
    return await VehicleRepository(session).get(vehicle_id)


async def owned_vehicle_named(session: AsyncSession, owner: User, name: str) -> Vehicle | None:
    return next(
        (v for v in await VehicleRepository(session).list_owned(owner.id) if v.name == name), None
    )


async def get_owned_vehicle(session: AsyncSession, user: User, vehicle_id: int) -> Vehicle:
    """A vehicle the user may change: their own."""
    vehicle = await get_vehicle(session, user, vehicle_id)
    if vehicle.owner_id != user.id:
        raise VehicleReadOnlyError(vehicle_id)
    return vehicle


async def list_shares(
    session: AsyncSession, owner: User, vehicle_id: int
) -> Sequence[tuple[VehicleShare, User]]:
    vehicle = await get_owned_vehicle(session, owner, vehicle_id)
    return await VehicleRepository(session).shares(vehicle.id)


class InvitationNotFoundError(Exception):
    def __init__(self, invitation_id: int) -> None:
        super().__init__(f"invitation {invitation_id} not found")


async def invite_to_vehicle(session: AsyncSession, owner: User, vehicle_id: int, email: str) -> str:
    """Invites ``email`` to read the vehicle; the normalised email.

    The answer is the same whether or not an account has that email (the owner learns nothing
    about who has an account), and nothing is granted until the invitee accepts.
    """
    vehicle = await get_owned_vehicle(session, owner, vehicle_id)
    email = normalize_email(email)
    if email == owner.email:
        raise ShareError("you own this vehicle already")
    vehicles = VehicleRepository(session)
    if not await vehicles.is_shared_with_email(vehicle.id, email):
        await vehicles.add_invitation(vehicle.id, owner.id, email)
    return email


async def list_invitations(
    session: AsyncSession, owner: User, vehicle_id: int
) -> Sequence[ShareInvitation]:
    vehicle = await get_owned_vehicle(session, owner, vehicle_id)
    return await VehicleRepository(session).invitations(vehicle.id)


async def withdraw_invitation(
    session: AsyncSession, owner: User, vehicle_id: int, invitation_id: int
) -> None:
    vehicle = await get_owned_vehicle(session, owner, vehicle_id)
    vehicles = VehicleRepository(session)
    invitation = await vehicles.get_invitation(invitation_id)
    if invitation is None or invitation.vehicle_id != vehicle.id:
        raise InvitationNotFoundError(invitation_id)
    await vehicles.delete_invitation(invitation)


async def my_invitations(
    session: AsyncSession, user: User
) -> Sequence[tuple[ShareInvitation, Vehicle, User]]:
    return await VehicleRepository(session).invitations_for(user.email)


async def _my_invitation(session: AsyncSession, user: User, invitation_id: int) -> ShareInvitation:
    invitation = await VehicleRepository(session).get_invitation(invitation_id)
    # Someone else's invitation is "not found", like someone else's vehicle.
    if invitation is None or invitation.email != user.email:
        raise InvitationNotFoundError(invitation_id)
    return invitation


async def accept_invitation(session: AsyncSession, user: User, invitation_id: int) -> Vehicle:
    """Turns the invitation into read-only access; the vehicle now shared with the user."""
    invitation = await _my_invitation(session, user, invitation_id)
    vehicles = VehicleRepository(session)
    vehicle = await vehicles.get(invitation.vehicle_id)
    assert vehicle is not None  # the invitation goes with its vehicle (ON DELETE CASCADE)
    if vehicle.owner_id != user.id:
        await vehicles.add_share(vehicle.id, user.id)
    await vehicles.delete_invitation(invitation)
    return vehicle


async def decline_invitation(session: AsyncSession, user: User, invitation_id: int) -> None:
    invitation = await _my_invitation(session, user, invitation_id)
    await VehicleRepository(session).delete_invitation(invitation)


async def unshare_vehicle(
    session: AsyncSession, owner: User, vehicle_id: int, user_id: int
) -> None:
    vehicle = await get_owned_vehicle(session, owner, vehicle_id)
    if not await VehicleRepository(session).remove_share(vehicle.id, user_id):
        raise ShareError(f"vehicle {vehicle_id} is not shared with user {user_id}")


async def create_vehicle(session: AsyncSession, owner: User, data: VehicleCreate) -> Vehicle:
    return await VehicleRepository(session).add(
        Vehicle(
            owner_id=owner.id,
            name=data.name,
            vin=data.vin,
            fuel_type=data.fuel_type,
            fuel_type_source="user" if "fuel_type" in data.model_fields_set else "default",
            profile_name=data.profile_name,
            weight_kg=data.weight_kg,
            volumetric_efficiency_pct=data.volumetric_efficiency_pct,
        )
    )


async def update_vehicle(
    session: AsyncSession, user: User, vehicle_id: int, data: VehicleUpdate
) -> Vehicle:
    vehicle = await get_owned_vehicle(session, user, vehicle_id)
    changes = data.model_dump(exclude_unset=True)
    for required in ("name", "fuel_type"):
        if required in changes and changes[required] is None:
            del changes[required]
    for field, value in changes.items():
        setattr(vehicle, field, value)
    if "fuel_type" in changes:
        vehicle.fuel_type_source = "user"
    await session.flush()
    return vehicle


@dataclass(frozen=True, slots=True)
class VehicleProfile:
    """Vehicle settings a device reports (Torque's profile); None: not reported."""

    name: str | None = None
    fuel_type: FuelType | None = None
    weight_kg: float | None = None
    volumetric_efficiency_pct: float | None = None


async def fill_unset_settings(
    session: AsyncSession, vehicle_id: int, profile: VehicleProfile
) -> list[str]:
    """Gives the vehicle the reported settings nobody has set (never overwriting one the user
    chose, nor one filled before); returns the settings it filled."""
    return await VehicleRepository(session).fill_unset(
        vehicle_id,
        profile_name=profile.name,
        fuel_type=profile.fuel_type.value if profile.fuel_type is not None else None,
        weight_kg=profile.weight_kg,
        volumetric_efficiency_pct=profile.volumetric_efficiency_pct,
    )


async def delete_vehicle(session: AsyncSession, user: User, vehicle_id: int) -> None:
    vehicle = await get_owned_vehicle(session, user, vehicle_id)
    await VehicleRepository(session).delete(vehicle)
