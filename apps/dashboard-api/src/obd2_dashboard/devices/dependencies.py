from typing import Annotated

from fastapi import Depends, HTTPException, status

from obd2_dashboard.auth.dependencies import DeviceCredentials
from obd2_dashboard.dependencies import SessionDep
from obd2_dashboard.devices.service import authenticate_device
from obd2_dashboard.models import Device

CHALLENGE = {"WWW-Authenticate": "Bearer"}


async def get_current_device(credentials: DeviceCredentials, session: SessionDep) -> Device:
    if credentials is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "device token required", CHALLENGE)
    device = await authenticate_device(session, credentials.credentials)
    if device is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "unknown or revoked device token", CHALLENGE
        )
    return device


CurrentDevice = Annotated[Device, Depends(get_current_device)]
