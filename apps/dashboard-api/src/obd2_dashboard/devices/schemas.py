from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

from obd2_dashboard.kit.schemas import Schema
from obd2_dashboard.presence.state import DeviceState
from obd2_dashboard.vehicles.schemas import VehicleName


class DeviceCreate(Schema):
    name: VehicleName


class DeviceRead(Schema):
    id: int
    vehicle_id: int
    name: str
    token_prefix: Annotated[
        str, Field(description="First characters of the token, to tell them apart")
    ]
    created_at: datetime
    revoked_at: datetime | None
    last_seen_at: datetime | None
    agent_version: str | None
    state: Annotated[
        DeviceState,
        Field(
            description="revoked; silent: nothing from it within DEVICE_SILENT_AFTER_S, or no "
            "upload that long while its adapter says connected; engine_off and "
            "adapter_disconnected: what its newest status report says; connected: uploads "
            "flowing"
        ),
    ] = "silent"
    state_since: Annotated[
        datetime | None, Field(description="when the device entered this state")
    ] = None
    status: Annotated[
        dict[str, Any] | None,
        Field(description="The agent's newest status report (adapter, spool backlog, …)"),
    ] = None


class DeviceCreated(DeviceRead):
    token: Annotated[str, Field(description="Shown once: only its hash is stored")]
    api_url: Annotated[
        str | None,
        Field(
            description="The server's PUBLIC_URL, which the agent uploads to; null when the "
            "operator has not set it (the UI then uses the address the browser used, and warns)"
        ),
    ] = None
