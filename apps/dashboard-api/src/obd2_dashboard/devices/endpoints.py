from fastapi import APIRouter, HTTPException, status

from obd2_dashboard.auth.dependencies import CurrentUser
from obd2_dashboard.dependencies import BrokerDep, SessionDep, SettingsDep
from obd2_dashboard.devices import service
from obd2_dashboard.devices.schemas import DeviceCreate, DeviceCreated, DeviceRead
from obd2_dashboard.kit.db import utcnow
from obd2_dashboard.kit.schemas import IdPath, error_responses
from obd2_dashboard.models import Device
from obd2_dashboard.presence import service as presence
from obd2_dashboard.settings import Settings
from obd2_dashboard.vehicles.service import VehicleNotFoundError

router = APIRouter(tags=["devices"])


def _read(device: Device, settings: Settings) -> DeviceRead:
    read = DeviceRead.model_validate(device)
    now = presence.of_device(device, utcnow(), presence.thresholds(settings))
    read.state, read.state_since = now.state, now.since
    return read


@router.get(
    "/vehicles/{vehicle_id}/devices",
    response_model=list[DeviceRead],
    responses=error_responses(401, 404, 422),
)
async def list_devices(
    vehicle_id: IdPath,
    user: CurrentUser,
    session: SessionDep,
    broker: BrokerDep,
    settings: SettingsDep,
) -> list[DeviceRead]:
    try:
        devices = await service.list_devices(session, user, vehicle_id)
    except VehicleNotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    result = []
    for device in devices:
        read = _read(device, settings)
        read.status = await service.device_status(broker, device.id)
        result.append(read)
    return result


@router.post(
    "/vehicles/{vehicle_id}/devices",
    response_model=DeviceCreated,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 403, 404, 422),
    summary="Create a device; its token is in this answer and nowhere else",
)
async def create_device(
    vehicle_id: IdPath,
    body: DeviceCreate,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
) -> DeviceCreated:
    try:
        created = await service.create_device(session, user, vehicle_id, body.name)
    except VehicleNotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    read = _read(created.device, settings)
    return DeviceCreated(**read.model_dump(), token=created.token, api_url=settings.PUBLIC_URL)


@router.post(
    "/devices/{device_id}/revoke",
    response_model=DeviceRead,
    responses=error_responses(401, 403, 404, 422),
    summary="Revoke a device's token for good",
)
async def revoke_device(
    device_id: IdPath, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> DeviceRead:
    try:
        device = await service.revoke_device(session, user, device_id)
    except service.DeviceNotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    return _read(device, settings)
