from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from obd2_dashboard.auth.dependencies import CurrentUser, DeviceCredentials
from obd2_dashboard.dependencies import CommitterDep, SessionDep, StateDep
from obd2_dashboard.devices.dependencies import CHALLENGE
from obd2_dashboard.kit.http import is_json_content_type
from obd2_dashboard.kit.schemas import IdPath, error_responses, request_body_schema
from obd2_dashboard.pids.definitions import NAME_PATTERN
from obd2_dashboard.telemetry import service
from obd2_dashboard.telemetry.committer import BUSY_DETAIL, DeviceRejectedError, IngestBusyError
from obd2_dashboard.telemetry.export import CsvLayout, download_name, samples_csv_response
from obd2_dashboard.telemetry.schemas import History
from obd2_dashboard.units.schemas import UnitsQuery
from obd2_dashboard.units.service import unit_system_of
from obd2_dashboard.vehicles.service import VehicleNotFoundError, get_vehicle
from obd2_protocol import (
    IngestBatch,
    IngestResult,
    SampleFields,
    decode_ingest_batch,
)

router = APIRouter(tags=["telemetry"])

EpochMs = Annotated[int, Query(ge=0, le=2**53, description="epoch milliseconds")]
PidQuery = Annotated[
    str,
    Query(
        min_length=1,
        max_length=64,
        pattern=NAME_PATTERN,
        examples=["RPM"],
        description="a name of the PID table or one of the vehicle's PIDs "
        "(GET /api/v1/vehicles/{vehicle_id}/pids), such as TORQUE_FF125D",
    ),
]


def _check_range(start: int, end: int) -> None:
    if start >= end:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "from must be earlier than to")


async def _ingest_samples(request: Request) -> Sequence[SampleFields]:
    # FastAPI's own body handling builds Python dicts with the json module and then models,
    # which costs more than storing the samples; IngestBatch still documents the body.
    if not is_json_content_type(request.headers.get("content-type")):
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            "the body must be JSON, sent with Content-Type: application/json",
        )
    body = await request.body()
    try:
        decoded = decode_ingest_batch(body)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from exc
    return decoded.samples if isinstance(decoded, IngestBatch) else decoded


@router.post(
    "/ingest",
    response_model=IngestResult,
    responses=error_responses(401, 413, 415, 422, 503),
    summary="Store a batch of samples from a device; 200 means durable",
    openapi_extra=request_body_schema(IngestBatch),
)
async def ingest(
    samples: Annotated[Sequence[SampleFields], Depends(_ingest_samples)],
    credentials: DeviceCredentials,
    committer: CommitterDep,
) -> IngestResult:
    # The token is checked in the transaction that stores the batch (group commit).
    if credentials is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "device token required", CHALLENGE)
    try:
        return await committer.store(credentials.credentials, samples, transport="http")
    except DeviceRejectedError as exc:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "unknown or revoked device token", CHALLENGE
        ) from exc
    except service.InvalidBatchError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    except IngestBusyError as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, BUSY_DETAIL, {"Retry-After": "1"}
        ) from exc


@router.get(
    "/vehicles/{vehicle_id}/samples",
    response_model=History,
    responses=error_responses(401, 404, 422),
    summary="One PID over a time range, downsampled to at most max_points buckets",
)
async def samples(
    vehicle_id: IdPath,
    user: CurrentUser,
    session: SessionDep,
    pid: PidQuery,
    from_: Annotated[int, Query(alias="from", ge=0, le=2**53)],
    to: EpochMs,
    max_points: Annotated[int, Query(ge=1, le=service.MAX_HISTORY_POINTS)] = 1000,
) -> History:
    _check_range(from_, to)
    try:
        result = await service.history(
            session,
            user,
            vehicle_id,
            pid=pid,
            start=from_,
            end=to,
            max_points=max_points,
        )
    except VehicleNotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except service.UnknownPidError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    return History(
        pid=pid,
        source="raw" if result.source == "raw" else "rollup",
        bucket_ms=result.width,
        points=[(b.ts, b.avg) for b in result.buckets],
        min=[b.min for b in result.buckets],
        max=[b.max for b in result.buckets],
        count=[b.count for b in result.buckets],
    )


@router.get(
    "/vehicles/{vehicle_id}/samples.csv",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "a row per sample time, a column per PID named with its unit: "
            "ts,time,RPM (rpm),SPEED (mph)",
        },
        **error_responses(401, 404, 422),
    },
    summary="The raw samples of a range as CSV in the user's units (or ?units=), streamed",
)
async def samples_csv(
    vehicle_id: IdPath,
    user: CurrentUser,
    session: SessionDep,
    state: StateDep,
    pid: Annotated[str, Query(min_length=1, max_length=2000, description="PIDs, comma-separated")],
    from_: Annotated[int, Query(alias="from", ge=0, le=2**53)],
    to: EpochMs,
    units: UnitsQuery = None,
    layout: Annotated[
        CsvLayout,
        Query(description="wide: a column per PID (the default); long: a row per sample"),
    ] = "wide",
) -> StreamingResponse:
    _check_range(from_, to)
    asked = sorted({p.strip() for p in pid.split(",") if p.strip()})
    if not asked:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "pid: name at least one PID")
    try:
        vehicle = await get_vehicle(session, user, vehicle_id)
    except VehicleNotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    try:
        await service.check_pids(session, vehicle.id, asked)
    except service.UnknownPidError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc

    return samples_csv_response(
        state.sessionmaker,
        vehicle.id,
        asked,
        from_,
        to,
        download_name(
            vehicle.name,
            vehicle.id,
            from_,
            "history" if layout == "wide" else "history-long",
            "csv",
        ),
        units or unit_system_of(user),
        layout,
    )
