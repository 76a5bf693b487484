from fastapi import APIRouter, HTTPException, Response, status

from obd2_dashboard.auth.dependencies import CurrentUser
from obd2_dashboard.dependencies import SessionDep
from obd2_dashboard.kit.schemas import IdPath, error_responses
from obd2_dashboard.vehicles import service
from obd2_dashboard.vehicles.schemas import VehicleCreate, VehicleRead, VehicleUpdate

router = APIRouter(prefix="/vehicles", tags=["vehicles"])


def _not_found(exc: service.VehicleNotFoundError) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, str(exc))


@router.get("", response_model=list[VehicleRead], responses=error_responses(401))
async def list_vehicles(user: CurrentUser, session: SessionDep) -> list[VehicleRead]:
    vehicles = await service.list_vehicles(session, user)
    return [VehicleRead.model_validate(v) for v in vehicles]


@router.post(
    "",
    response_model=VehicleRead,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 403, 422),
)
async def create_vehicle(
    body: VehicleCreate, user: CurrentUser, session: SessionDep
) -> VehicleRead:
    return VehicleRead.model_validate(await service.create_vehicle(session, user, body))


@router.get("/{vehicle_id}", response_model=VehicleRead, responses=error_responses(401, 404, 422))
async def get_vehicle(vehicle_id: IdPath, user: CurrentUser, session: SessionDep) -> VehicleRead:
    try:
        return VehicleRead.model_validate(await service.get_vehicle(session, user, vehicle_id))
    except service.VehicleNotFoundError as exc:
        raise _not_found(exc) from exc


@router.patch(
    "/{vehicle_id}", response_model=VehicleRead, responses=error_responses(401, 403, 404, 422)
)
async def update_vehicle(
    vehicle_id: IdPath, body: VehicleUpdate, user: CurrentUser, session: SessionDep
) -> VehicleRead:
    try:
        vehicle = await service.update_vehicle(session, user, vehicle_id, body)
    except service.VehicleNotFoundError as exc:
        raise _not_found(exc) from exc
    return VehicleRead.model_validate(vehicle)


@router.delete(
    "/{vehicle_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403, 404, 422),
    summary="Delete a vehicle with its devices and samples",
)
async def delete_vehicle(vehicle_id: IdPath, user: CurrentUser, session: SessionDep) -> Response:
    try:
        await service.delete_vehicle(session, user, vehicle_id)
    except service.VehicleNotFoundError as exc:
        raise _not_found(exc) from exc
    return Response(status_code=status.HTTP_204_NO_CONTENT)
