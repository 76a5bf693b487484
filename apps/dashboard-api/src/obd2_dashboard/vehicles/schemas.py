from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from obd2_dashboard.kit.schemas import Schema
from obd2_dashboard.models import FuelType

# Printable text only: no control characters (NUL is not storable in Postgres text).
VehicleName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$"
    ),
]
# ISO 3779: 17 characters, digits and capitals without I, O and Q.
Vin = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[A-HJ-NPR-Z0-9]{17}$"),
]


class VehicleCreate(Schema):
    name: VehicleName
    vin: Vin | None = None
    fuel_type: Annotated[
        FuelType, Field(description="turns MAF readings into litres when FUEL_RATE is absent")
    ] = FuelType.petrol


class VehicleUpdate(Schema):
    name: VehicleName | None = None
    vin: Vin | None = None
    fuel_type: FuelType | None = None


class VehicleRead(Schema):
    id: int
    name: str
    vin: str | None
    fuel_type: FuelType
    created_at: datetime
    last_seen_at: Annotated[datetime | None, Field(description="Newest sample received")]
