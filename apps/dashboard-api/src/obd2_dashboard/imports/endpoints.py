from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status

from obd2_dashboard.auth.dependencies import CurrentUser
from obd2_dashboard.dependencies import SessionDep, StateDep
from obd2_dashboard.imports.formats import ImportFormat, UnreadableLogError
from obd2_dashboard.imports.schemas import ImportSummaryRead
from obd2_dashboard.imports.service import ImportOptions, import_log
from obd2_dashboard.kit.schemas import IdPath, error_responses
from obd2_dashboard.vehicles.service import VehicleNotFoundError, get_owned_vehicle

router = APIRouter(tags=["imports"])

IMPORTS_PATH = "/vehicles/{vehicle_id}/imports"


@router.post(
    IMPORTS_PATH,
    response_model=ImportSummaryRead,
    responses=error_responses(401, 403, 404, 413, 422),
    summary="Import a log file (the request body: Torque CSV, CSV with a time column, GPX) as "
    "the vehicle's history; owner only",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/gpx+xml": {"schema": {"type": "string"}},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
async def import_file(
    vehicle_id: IdPath,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    state: StateDep,
    format_: Annotated[ImportFormat | None, Query(alias="format")] = None,
    dry_run: bool = False,
    rate_hz: Annotated[float | None, Query(gt=0, le=1000)] = None,
    start: Annotated[
        int | None, Query(ge=0, le=2**53, description="epoch ms of the first row, with rate_hz")
    ] = None,
    map_: Annotated[
        list[str] | None, Query(alias="map", max_length=200, description="COLUMN=PID")
    ] = None,
) -> ImportSummaryRead:
    try:
        vehicle = await get_owned_vehicle(session, user, vehicle_id)
    except VehicleNotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    mapping: dict[str, str] = {}
    for given in map_ or []:
        column, sep, pid = given.rpartition("=")
        if not sep or not column.strip() or not pid.strip():
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, f"map: {given!r} is not COLUMN=PID"
            )
        mapping[column.strip()] = pid.strip()
    data = await request.body()
    if not data:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "the body holds no file")
    options = ImportOptions(
        fmt=format_, mapping=mapping, rate_hz=rate_hz, start_ms=start, dry_run=dry_run
    )
    try:
        summary = await import_log(state.sessionmaker, vehicle.id, data, options)
    except UnreadableLogError as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"{exc}; nothing was stored"
        ) from exc
    return ImportSummaryRead(**asdict(summary))
