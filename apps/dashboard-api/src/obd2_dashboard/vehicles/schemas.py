from datetime import datetime
from typing import Annotated, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints

from obd2_dashboard.kit.schemas import Schema
from obd2_dashboard.models import FuelType
from obd2_dashboard.presence.state import VehicleState

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
    # Upper-cased before the pattern is checked: "1hgcm…" is the same VIN as "1HGCM…".
    BeforeValidator(lambda v: v.strip().upper() if isinstance(v, str) else v),
    StringConstraints(pattern=r"^[A-HJ-NPR-Z0-9]{17}$"),
]


ProfileName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$"
    ),
]
WeightKg = Annotated[float, Field(gt=0, le=100_000, description="the vehicle's weight, kg")]
VolumetricEfficiency = Annotated[
    float, Field(gt=0, le=200, description="the engine's volumetric efficiency, %")
]
_FUEL_TYPE = (
    "turns MAF readings into litres when neither FUEL_RATE nor Torque's fuel flow is sent; "
    "when not given, petrol until a Torque profile says otherwise"
)


class VehicleCreate(Schema):
    name: VehicleName
    vin: Vin | None = None
    fuel_type: Annotated[FuelType, Field(description=_FUEL_TYPE)] = FuelType.petrol
    profile_name: ProfileName | None = None
    weight_kg: WeightKg | None = None
    volumetric_efficiency_pct: VolumetricEfficiency | None = None


class VehicleUpdate(Schema):
    name: VehicleName | None = None
    vin: Vin | None = None
    fuel_type: FuelType | None = None
    profile_name: ProfileName | None = None
    weight_kg: WeightKg | None = None
    volumetric_efficiency_pct: VolumetricEfficiency | None = None


class VinInfoRead(Schema):
    wmi: str
    maker: str | None
    region: str | None
    model_year: int | None


class VehicleRead(Schema):
    id: int
    name: str
    vin: str | None
    fuel_type: FuelType
    fuel_type_source: Annotated[
        Literal["default", "user", "torque"],
        Field(description="who chose fuel_type: nobody (petrol), the user, or a Torque profile"),
    ] = "default"
    profile_name: Annotated[
        str | None, Field(description="the vehicle's profile name in Torque, or the user's")
    ] = None
    weight_kg: float | None = None
    volumetric_efficiency_pct: float | None = None
    created_at: datetime
    last_seen_at: Annotated[datetime | None, Field(description="Newest sample received")]
    state: Annotated[
        VehicleState,
        Field(
            description="never_seen: no live upload yet; live: one within "
            "VEHICLE_STALE_AFTER_S; stale: within VEHICLE_OFFLINE_AFTER_S; offline: older "
            "(imported and backfilled history does not count)"
        ),
    ] = "never_seen"
    state_since: Annotated[
        datetime | None, Field(description="when the vehicle entered this state")
    ] = None
    role: Annotated[
        Literal["owner", "viewer"], Field(description="viewer: shared with you read-only")
    ] = "owner"
    vin_info: Annotated[
        VinInfoRead | None, Field(description="Maker, region and model year read from the VIN")
    ] = None
    open_alerts: Annotated[
        int, Field(description="alerts of the vehicle fired and not cleared yet")
    ] = 0


def _email_address(value: str) -> str:
    # The syntax only: whether an account has it is not told (see InvitationSent).
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"not an email address: {exc}") from None


class ShareCreate(Schema):
    email: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=3, max_length=320),
        AfterValidator(_email_address),
    ]


class ShareRead(Schema):
    user_id: int
    email: str
    created_at: datetime


class InvitationSent(Schema):
    detail: Annotated[
        str,
        Field(
            description="Always the same: whether the email has an account is not told; "
            "access begins when its owner accepts"
        ),
    ]
    email: str


class InvitationRead(Schema):
    """A pending invitation, as the vehicle's owner sees it."""

    id: int
    email: str
    created_at: datetime


class MyInvitationRead(Schema):
    """An invitation addressed to the signed-in user."""

    id: int
    vehicle_id: int
    vehicle_name: str
    invited_by: Annotated[str, Field(description="the owner's email")]
    created_at: datetime
