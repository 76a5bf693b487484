from fastapi import APIRouter, HTTPException, status

from obd2_dashboard.auth.dependencies import CurrentUser
from obd2_dashboard.dependencies import SessionDep
from obd2_dashboard.dtcs import service
from obd2_dashboard.dtcs.schemas import ClearRequest, CommandRead, DtcRead
from obd2_dashboard.kit.schemas import IdPath, error_responses
from obd2_dashboard.vehicles.service import VehicleNotFoundError

router = APIRouter(tags=["dtcs"])


@router.get(
    "/vehicles/{vehicle_id}/dtcs",
    response_model=list[DtcRead],
    responses=error_responses(401, 404, 422),
    summary="Trouble codes: active first, then the history",
)
async def list_dtcs(vehicle_id: IdPath, user: CurrentUser, session: SessionDep) -> list[DtcRead]:
    try:
        return await service.list_dtcs(session, user, vehicle_id)
    except VehicleNotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc


@router.post(
    "/vehicles/{vehicle_id}/dtcs/clear",
    response_model=CommandRead,
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Ask the vehicle's agent to clear its trouble codes (mode 04)",
)
async def clear_dtcs(
    vehicle_id: IdPath, body: ClearRequest, user: CurrentUser, session: SessionDep
) -> CommandRead:
    del body  # its only field must be `true`: validation is the confirmation check
    try:
        command = await service.request_clear(session, user, vehicle_id)
    except VehicleNotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except service.NoAgentError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    return CommandRead.model_validate(command)


@router.get(
    "/vehicles/{vehicle_id}/commands",
    response_model=list[CommandRead],
    responses=error_responses(401, 404, 422),
    summary="Commands sent to the vehicle's agent and their outcome",
)
async def list_commands(
    vehicle_id: IdPath, user: CurrentUser, session: SessionDep
) -> list[CommandRead]:
    try:
        commands = await service.list_commands(session, user, vehicle_id)
    except VehicleNotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    return [CommandRead.model_validate(c) for c in commands]
