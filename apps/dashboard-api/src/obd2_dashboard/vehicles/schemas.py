from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from obd2_dashboard.kit.schemas import Schema

# Printable text only: no control characters (NUL is not storable in Postgres text).
VehicleName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$"
    ),
]
# ISO 3779: 17 characters, digits and letters without I, O and Q. pydantic matches the pattern
# before it applies to_upper, so the pattern takes either case and the stored VIN is in capitals.
Vin = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, to_upper=True, pattern=r"^[A-HJ-NPR-Za-hj-npr-z0-9]{17}$"
    ),
]


class VehicleCreate(Schema):
    name: VehicleName
    vin: Vin | None = None


class VehicleUpdate(Schema):
    name: VehicleName | None = None
    vin: Vin | None = None


class VehicleRead(Schema):
    id: int
    name: str
    vin: str | None
    created_at: datetime
    last_seen_at: Annotated[datetime | None, Field(description="Newest sample received")]
