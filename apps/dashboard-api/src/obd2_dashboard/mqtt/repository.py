from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from obd2_dashboard.models import Vehicle
from obd2_dashboard.mqtt.topics import VehicleInfo


async def all_vehicles(session: AsyncSession) -> list[VehicleInfo]:
    result = await session.execute(
        select(Vehicle.id, Vehicle.name, Vehicle.vin).order_by(Vehicle.id)
    )
    return [VehicleInfo(int(i), str(n), v) for i, n, v in result.all()]
