"""The state of stored vehicles and devices, as the API returns it everywhere."""

from datetime import datetime

from obd2_dashboard.models import Device, Vehicle
from obd2_dashboard.presence.state import (
    DeviceStateAt,
    Thresholds,
    VehicleStateAt,
    device_state,
    vehicle_state,
)
from obd2_dashboard.settings import Settings


def thresholds(settings: Settings) -> Thresholds:
    return Thresholds.of(
        settings.VEHICLE_STALE_AFTER_S,
        settings.VEHICLE_OFFLINE_AFTER_S,
        settings.DEVICE_SILENT_AFTER_S,
    )


def of_vehicle(vehicle: Vehicle, now: datetime, limits: Thresholds) -> VehicleStateAt:
    return vehicle_state(
        created_at=vehicle.created_at,
        last_seen_at=vehicle.last_seen_at,
        live_since=vehicle.live_since,
        now=now,
        thresholds=limits,
    )


def of_device(device: Device, now: datetime, limits: Thresholds) -> DeviceStateAt:
    return device_state(
        created_at=device.created_at,
        revoked_at=device.revoked_at,
        last_seen_at=device.last_seen_at,
        last_upload_at=device.last_upload_at,
        flowing_since=device.flowing_since,
        adapter_state=device.adapter_state,
        adapter_state_since=device.adapter_state_since,
        now=now,
        thresholds=limits,
    )
