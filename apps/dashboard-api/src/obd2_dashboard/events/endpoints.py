from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from obd2_dashboard.auth.dependencies import CurrentUser
from obd2_dashboard.dependencies import SessionDep
from obd2_dashboard.events import service
from obd2_dashboard.events.schemas import VehicleEventRead
from obd2_dashboard.kit.schemas import IdPath, error_responses
from obd2_dashboard.vehicles.service import VehicleNotFoundError

router = APIRouter(tags=["events"])

EpochMs = Annotated[int, Query(ge=0, le=2**53, description="epoch milliseconds")]


@router.get(
    "/vehicles/{vehicle_id}/events",
    response_model=list[VehicleEventRead],
    responses=error_responses(401, 404, 422),
    summary="What the vehicle's devices told about it (Torque's notices) in [from, to)",
)
async def list_events(
    vehicle_id: IdPath,
    user: CurrentUser,
    session: SessionDep,
    from_: Annotated[int, Query(alias="from", ge=0, le=2**53)],
    to: EpochMs,
    limit: Annotated[int, Query(ge=1, le=service.MAX_EVENTS)] = 100,
) -> list[VehicleEventRead]:
    if from_ >= to:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "from must be earlier than to")
    try:
        events = await service.list_events(
            session, user, vehicle_id, start=from_, end=to, limit=limit
        )
    except VehicleNotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    return [VehicleEventRead.model_validate(event) for event in events]
