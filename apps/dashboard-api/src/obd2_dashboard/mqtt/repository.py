from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from obd2_dashboard.models import FuelType, Trip, Vehicle
from obd2_dashboard.mqtt.topics import VehicleInfo


async def all_vehicles(session: AsyncSession) -> list[VehicleInfo]:
    result = await session.execute(
        select(Vehicle.id, Vehicle.name, Vehicle.vin).order_by(Vehicle.id)
    )
    return [VehicleInfo(int(i), str(n), v) for i, n, v in result.all()]


async def last_finished_trip(
    session: AsyncSession, vehicle_id: int
) -> tuple[Trip, FuelType] | None:
    """The vehicle's newest finished trip and the fuel type its fuel figures use."""
    result = await session.execute(
        select(Trip, Vehicle.fuel_type)
        .join(Vehicle, Vehicle.id == Trip.vehicle_id)
        .where(Trip.vehicle_id == vehicle_id, Trip.finished_at.is_not(None))
        .order_by(Trip.start_ts.desc(), Trip.id.desc())
        .limit(1)
    )
    row = result.first()
    return None if row is None else (row[0], FuelType(row[1]))
