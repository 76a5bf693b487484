from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from obd2_dashboard.models import User, Vehicle
from obd2_dashboard.vehicles.repository import VehicleRepository
from obd2_dashboard.vehicles.schemas import VehicleCreate, VehicleUpdate


class VehicleNotFoundError(Exception):
    def __init__(self, vehicle_id: int) -> None:
        super().__init__(f"vehicle {vehicle_id} not found")


async def list_vehicles(session: AsyncSession, user: User) -> Sequence[Vehicle]:
    return await VehicleRepository(session).list_owned(user.id)


async def get_vehicle(session: AsyncSession, user: User, vehicle_id: int) -> Vehicle:
    # Another user's vehicle is "not found", never "forbidden": ids reveal nothing.
    vehicle = await VehicleRepository(session).get_owned(user.id, vehicle_id)
    if vehicle is None:
        raise VehicleNotFoundError(vehicle_id)
    return vehicle


async def create_vehicle(session: AsyncSession, owner: User, data: VehicleCreate) -> Vehicle:
    return await VehicleRepository(session).add(
        Vehicle(owner_id=owner.id, name=data.name, vin=data.vin, fuel_type=data.fuel_type)
    )


async def update_vehicle(
    session: AsyncSession, user: User, vehicle_id: int, data: VehicleUpdate
) -> Vehicle:
    vehicle = await get_vehicle(session, user, vehicle_id)
    changes = data.model_dump(exclude_unset=True)
    for required in ("name", "fuel_type"):
        if required in changes and changes[required] is None:
            del changes[required]
    for field, value in changes.items():
        setattr(vehicle, field, value)
    await session.flush()
    return vehicle


async def delete_vehicle(session: AsyncSession, user: User, vehicle_id: int) -> None:
    vehicle = await get_vehicle(session, user, vehicle_id)
    await VehicleRepository(session).delete(vehicle)
