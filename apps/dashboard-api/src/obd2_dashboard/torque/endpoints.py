from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import PlainTextResponse

from obd2_dashboard.dependencies import CommitterDep, SessionDep
from obd2_dashboard.devices.service import authenticate_device
from obd2_dashboard.telemetry import service
from obd2_dashboard.telemetry.committer import BUSY_DETAIL, DeviceRejectedError, IngestBusyError
from obd2_dashboard.torque.service import (
    REFUSED_UPLOADS,
    TorqueRequestError,
    parse_fields,
    parse_upload,
    store_upload,
)

router = APIRouter(tags=["torque"])

TORQUE_OK = "OK!"


async def _handle(
    request: Request, token: str | None, session: SessionDep, committer: CommitterDep
) -> str:
    # No token is the same as a wrong one: 401, like every other route without credentials.
    device = await authenticate_device(session, token) if token else None
    if device is None or token is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown or revoked device token")
    raw = request.scope["query_string"].decode("utf-8", errors="replace")
    if request.method == "POST":
        body = (await request.body()).decode("utf-8", errors="replace")
        raw = f"{raw}&{body}" if raw else body
    try:
        upload = parse_upload(parse_fields(raw))
    except TorqueRequestError as exc:
        REFUSED_UPLOADS.labels(exc.reason).inc()
        raise HTTPException(exc.status, str(exc)) from exc
    try:
        await store_upload(
            session,
            committer,
            token=token,
            device_id=device.id,
            vehicle_id=device.vehicle_id,
            upload=upload,
        )
    except DeviceRejectedError as exc:  # revoked since it was authenticated above
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "unknown or revoked device token"
        ) from exc
    except service.InvalidBatchError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    except IngestBusyError as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, BUSY_DETAIL, {"Retry-After": "1"}
        ) from exc
    # Torque retries a request until its answer is exactly "OK!".
    return TORQUE_OK


# Spelled out: FastAPI would file the error model under the route's text/plain type.
_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/plain": {"schema": {"type": "string", "const": TORQUE_OK}}}},
    401: {"description": "unknown or revoked device token", "content": _ERROR},
    413: {"description": "the upload is larger than 512 KiB", "content": _ERROR},
    422: {
        "description": "the time is not understood, or the upload has more than 4000 fields, "
        "more than 1024 values or a field longer than 1024 characters",
        "content": _ERROR,
    },
    503: {"description": "the database is unavailable; Torque retries", "content": _ERROR},
}
TokenQuery = Annotated[str | None, Query(max_length=128, description="device token")]
_DOC = (
    "Torque Pro's web upload: `k<hex id>=value` pairs with `time` (epoch ms), `session`, `id` "
    "and `eml`, and the uploads of names and units (`userFullName…`, `userShortName…`, "
    "`userUnit…`, `defaultUnit…`), of the vehicle's profile (`profileName`, "
    "`profileFuelType`, `profileWeight`, `profileVe`) and of notices (`notice`, "
    "`noticeClass`). Every numeric value is kept: ids of the PID table under its names, "
    'any other under `TORQUE_<HEX>`. Torque\'s "no value" (NaN, ±Infinity, ±3.4028E38) '
    "and values beyond ±1e12 are skipped and counted. Answers `OK!` once stored."
)


@router.get(
    "/torque",
    response_class=PlainTextResponse,
    responses=_RESPONSES,
    summary="Torque Pro upload (GET)",
    description=_DOC,
)
async def torque_get(
    request: Request, session: SessionDep, committer: CommitterDep, token: TokenQuery = None
) -> str:
    return await _handle(request, token, session, committer)


@router.post(
    "/torque",
    response_class=PlainTextResponse,
    responses=_RESPONSES,
    summary="Torque Pro upload (form POST)",
    description=_DOC,
)
async def torque_post(
    request: Request, session: SessionDep, committer: CommitterDep, token: TokenQuery = None
) -> str:
    return await _handle(request, token, session, committer)
