from fastapi import APIRouter, HTTPException, status

from obd2_dashboard.auth.dependencies import CurrentUser
from obd2_dashboard.dependencies import SessionDep
from obd2_dashboard.kit.schemas import IdPath, error_responses
from obd2_dashboard.pids import service
from obd2_dashboard.pids.definitions import builtin_catalogue
from obd2_dashboard.pids.schemas import PidRead, VehiclePidRead
from obd2_dashboard.vehicles.service import VehicleNotFoundError

router = APIRouter(tags=["pids"])


@router.get(
    "/pids",
    response_model=list[PidRead],
    responses=error_responses(401),
    summary="The PIDs the server knows by name: the PID table, then Torque's published ids",
)
async def list_pids(user: CurrentUser) -> list[PidRead]:
    del user  # signed-in users only, like the rest of the API
    return [PidRead.of(definition) for definition in builtin_catalogue()]


@router.get(
    "/vehicles/{vehicle_id}/pids",
    response_model=list[VehiclePidRead],
    responses=error_responses(401, 404, 422),
    summary="Every PID the vehicle has sent (or its device has named), with labels and units",
)
async def vehicle_pids(
    vehicle_id: IdPath, user: CurrentUser, session: SessionDep
) -> list[VehiclePidRead]:
    try:
        entries = await service.vehicle_catalogue(session, user, vehicle_id)
    except VehicleNotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    return [VehiclePidRead.of_entry(entry) for entry in entries]
