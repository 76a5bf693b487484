from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import PlainTextResponse
from pydantic import ValidationError

from obd2_dashboard.dependencies import CommitterDep, SessionDep
from obd2_dashboard.devices.service import authenticate_device
from obd2_dashboard.telemetry import service
from obd2_dashboard.telemetry.committer import BUSY_DETAIL, DeviceRejectedError, IngestBusyError
from obd2_dashboard.torque.service import TorqueRequestError, samples_from_query

router = APIRouter(tags=["torque"])

TORQUE_OK = "OK!"


async def _handle(
    request: Request, token: str | None, session: SessionDep, committer: CommitterDep
) -> str:
    # No token is the same as a wrong one: 401, like every other route without credentials.
    device = await authenticate_device(session, token) if token else None
    if device is None or token is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown or revoked device token")
    fields = dict(request.query_params)
    if request.method == "POST":
        body = (await request.body()).decode("utf-8", errors="replace")
        fields.update(parse_qsl(body, keep_blank_values=True))
    try:
        samples = samples_from_query(fields)
    except (TorqueRequestError, ValidationError) as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc).splitlines()[0]
        ) from exc
    if samples:
        try:
            await committer.store(token, samples, transport="torque")
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
    422: {"description": "a value or the time is not understood", "content": _ERROR},
    503: {"description": "the database is unavailable; Torque retries", "content": _ERROR},
}
TokenQuery = Annotated[str | None, Query(max_length=128, description="device token")]
_DOC = (
    "Torque Pro's web upload: `k<hex PID>=value` pairs with `time` (epoch ms), `session`, `id` "
    "and `eml`; answers `OK!` once stored."
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
