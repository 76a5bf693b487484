from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from obd2_dashboard.auth.repository import UserRepository
from obd2_dashboard.auth.service import normalize_email
from obd2_dashboard.models import User, Vehicle, VehicleShare
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


async def share_vehicle(
    session: AsyncSession, owner: User, vehicle_id: int, email: str
) -> tuple[VehicleShare, User]:
    vehicle = await get_owned_vehicle(session, owner, vehicle_id)
    grantee = await UserRepository(session).get_by_email(normalize_email(email))
    if grantee is None:
        raise ShareError(f"no user with email {email}")
    if grantee.id == owner.id:
        raise ShareError("you own this vehicle already")
    share = await VehicleRepository(session).add_share(vehicle.id, grantee.id)
    return share, grantee


async def unshare_vehicle(
    session: AsyncSession, owner: User, vehicle_id: int, user_id: int
) -> None:
    vehicle = await get_owned_vehicle(session, owner, vehicle_id)
    if not await VehicleRepository(session).remove_share(vehicle.id, user_id):
        raise ShareError(f"vehicle {vehicle_id} is not shared with user {user_id}")


async def create_vehicle(session: AsyncSession, owner: User, data: VehicleCreate) -> Vehicle:
    return await VehicleRepository(session).add(
        Vehicle(owner_id=owner.id, name=data.name, vin=data.vin, fuel_type=data.fuel_type)
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
    await session.flush()
    return vehicle


async def delete_vehicle(session: AsyncSession, user: User, vehicle_id: int) -> None:
    vehicle = await get_owned_vehicle(session, user, vehicle_id)
    await VehicleRepository(session).delete(vehicle)
