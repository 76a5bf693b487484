import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from obd2_dashboard.devices.repository import DeviceRepository
from obd2_dashboard.devices.values import ActiveDevice
from obd2_dashboard.kit.broker import Broker
from obd2_dashboard.kit.db import utcnow
from obd2_dashboard.kit.security import constant_time_equal, new_token, token_digest
from obd2_dashboard.models import Device, User, Vehicle
from obd2_dashboard.vehicles.service import get_owned_vehicle

TOKEN_PREFIX = "obd2d"  # noqa: S105 - a label in front of the random part, not a secret
_SHOWN_PREFIX_LENGTH = 12


def device_report_key(kind: str, device_id: int) -> str:
    """Broker key of the newest report of a kind ("status", "dtcs", …) an agent sent."""
    return f"device:{device_id}:{kind}"


async def device_status(broker: Broker, device_id: int) -> dict[str, Any] | None:
    try:
        raw = await broker.get(device_report_key("status", device_id))
    except Exception:
        return None  # the broker being down hides the agent's status, nothing more
    if raw is None:
        return None
    value = json.loads(raw)
    return value if isinstance(value, dict) else None


class DeviceNotFoundError(Exception):
    def __init__(self, device_id: int) -> None:
        super().__init__(f"device {device_id} not found")


@dataclass(frozen=True, slots=True)
class NewDevice:
    device: Device
    token: str


async def create_device_for(session: AsyncSession, vehicle: Vehicle, name: str) -> NewDevice:
    token = new_token(TOKEN_PREFIX)
    device = await DeviceRepository(session).add(
        Device(
            vehicle_id=vehicle.id,
            name=name,
            token_hash=token_digest(token),
            token_prefix=token[:_SHOWN_PREFIX_LENGTH],
        )
    )
    return NewDevice(device, token)


async def reissue_device(session: AsyncSession, vehicle: Vehicle, name: str) -> NewDevice:
    """The vehicle's device of this name, made when missing, active again with a fresh token.

    For a writer that uploads past data as the same device from one run to the next (imports,
    the demo's history): its seqs then name the same readings, so a second run stores nothing
    twice. The device is marked ``backfill``: alert rules never read its samples.
    """
    device = await DeviceRepository(session).get_by_name(vehicle.id, name)
    if device is None:
        made = await create_device_for(session, vehicle, name)
        # Its samples are the past: no alert rule reads them (alerts.repository).
        made.device.backfill = True
        await session.flush()
        return made
    device.backfill = True
    token = new_token(TOKEN_PREFIX)
    device.token_hash = token_digest(token)
    device.token_prefix = token[:_SHOWN_PREFIX_LENGTH]
    device.revoked_at = None
    await session.flush()
    return NewDevice(device, token)


async def retire_device(session: AsyncSession, device_id: int) -> None:
    """Revokes a device the server itself uploaded as, once it is done."""
    device = await DeviceRepository(session).get(device_id)
    if device is not None and device.revoked_at is None:
        device.revoked_at = utcnow()
        await session.flush()


async def create_device(session: AsyncSession, user: User, vehicle_id: int, name: str) -> NewDevice:
    vehicle = await get_owned_vehicle(session, user, vehicle_id)
    return await create_device_for(session, vehicle, name)


async def list_devices(session: AsyncSession, user: User, vehicle_id: int) -> Sequence[Device]:
    vehicle = await get_owned_vehicle(session, user, vehicle_id)
    return await DeviceRepository(session).list_for_vehicle(vehicle.id)


async def revoke_device(session: AsyncSession, user: User, device_id: int) -> Device:
    device = await DeviceRepository(session).get_owned(user.id, device_id)
    if device is None:
        raise DeviceNotFoundError(device_id)
    if device.revoked_at is None:
        device.revoked_at = utcnow()
        await session.flush()
    return device


async def device_is_active(session: AsyncSession, device_id: int) -> bool:
    device = await DeviceRepository(session).get(device_id)
    return device is not None and device.revoked_at is None


def device_token_digest(token: str) -> bytes | None:
    """What a device token is looked up by; None when it cannot be one."""
    if not token.startswith(f"{TOKEN_PREFIX}_") or len(token) > 128:
        return None
    return token_digest(token)


async def authenticate_device(session: AsyncSession, token: str) -> Device | None:
    """The active device this token belongs to, or None."""
    digest = device_token_digest(token)
    if digest is None:
        return None
    device = await DeviceRepository(session).get_active_by_token_hash(digest)
    if device is None or not constant_time_equal(device.token_hash.hex(), digest.hex()):
        return None
    return device


async def active_by_token_hashes(
    session: AsyncSession, token_hashes: Collection[bytes]
) -> dict[bytes, ActiveDevice]:
    """The unrevoked devices with these token hashes, by hash (the ingest path's lookup)."""
    return await DeviceRepository(session).active_by_token_hashes(token_hashes)
