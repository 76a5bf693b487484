"""Every table of the server; Alembic reads ``Base.metadata`` from here."""

from obd2_dashboard.kit.db import Base
from obd2_dashboard.models.alert import Alert, AlertDelivery, AlertRule
from obd2_dashboard.models.device import Device
from obd2_dashboard.models.dtc import DeviceCommand, VehicleDtc
from obd2_dashboard.models.event import VehicleEvent
from obd2_dashboard.models.pid import VehiclePid
from obd2_dashboard.models.rollup import (
    ROLLUP_15M_BUCKET_MS,
    ROLLUP_BUCKET_MS,
    DeadLetter,
    IngestOutbox,
    SampleRollup,
    SampleRollup15m,
)
from obd2_dashboard.models.sample import Sample
from obd2_dashboard.models.trip import Trip, TripPoint
from obd2_dashboard.models.user import User, UserSession
from obd2_dashboard.models.vehicle import FuelType, ShareInvitation, Vehicle, VehicleShare

__all__ = [
    "ROLLUP_15M_BUCKET_MS",
    "ROLLUP_BUCKET_MS",
    "Alert",
    "AlertDelivery",
    "AlertRule",
    "Base",
    "DeadLetter",
    "Device",
    "DeviceCommand",
    "FuelType",
    "IngestOutbox",
    "Sample",
    "SampleRollup",
    "SampleRollup15m",
    "ShareInvitation",
    "Trip",
    "TripPoint",
    "User",
    "UserSession",
    "Vehicle",
    "VehicleDtc",
    "VehicleEvent",
    "VehiclePid",
    "VehicleShare",
]
