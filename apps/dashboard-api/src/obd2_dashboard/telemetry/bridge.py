"""The Bridge Agent's WebSocket: the same batches as POST /ingest, each acknowledged by id.

One batch is processed at a time per socket and the next frame is read only after the ack is
sent, so a fast agent is slowed by TCP flow control instead of filling server memory.
"""

import json
import logging

from fastapi import APIRouter, WebSocket
from pydantic import ValidationError
from starlette.websockets import WebSocketDisconnect

from obd2_dashboard.dependencies import AppState, get_state
from obd2_dashboard.devices.service import authenticate_device, device_report_key
from obd2_dashboard.kit.db import session_scope, utcnow
from obd2_dashboard.kit.websocket import FrameError, receive_text_frame
from obd2_dashboard.live.hub import OPEN_STREAMS
from obd2_dashboard.telemetry import service
from obd2_dashboard.telemetry.repository import SampleRepository
from obd2_protocol import (
    BridgeAck,
    BridgeBatch,
    BridgeCommandResult,
    BridgeDtcReport,
    BridgeError,
    BridgeStatus,
)

router = APIRouter(prefix="/bridge", tags=["bridge"])
log = logging.getLogger("obd2_dashboard.bridge")

CLOSE_UNAUTHORIZED = 4401


def _bearer(websocket: WebSocket) -> str | None:
    scheme, _, token = websocket.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    return token.strip()


async def _error(websocket: WebSocket, batch_id: int | None, status: int, detail: str) -> None:
    frame = BridgeError(id=batch_id, status=status, detail=detail)
    await websocket.send_text(frame.model_dump_json())


_REPORTS: dict[str, type[BridgeStatus | BridgeDtcReport | BridgeCommandResult]] = {
    "status": BridgeStatus,
    "dtcs": BridgeDtcReport,
    "command_result": BridgeCommandResult,
}


async def _report(
    websocket: WebSocket, state: AppState, device_id: int, kind: str, frame: dict[str, object]
) -> None:
    """Keeps the newest report of each kind per device where every API process can read it."""
    try:
        report = _REPORTS[kind].model_validate(frame)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        await _error(websocket, None, 422, f"invalid {kind}: {where}: {first['msg']}")
        return
    try:
        await state.broker.set(device_report_key(kind, device_id), report.model_dump_json())
    except Exception as exc:
        log.warning("device report not kept: %s", type(exc).__name__)
    if isinstance(report, BridgeStatus):
        async with session_scope(state.sessionmaker) as session:
            await SampleRepository(session).touch_last_seen_by_id(
                device_id, utcnow(), report.agent_version
            )


@router.websocket("/ws")
async def bridge_socket(websocket: WebSocket) -> None:
    state = get_state(websocket)  # type: ignore[arg-type]
    token = _bearer(websocket)
    async with state.sessionmaker() as session:
        device = await authenticate_device(session, token) if token else None
    if device is None:
        await websocket.close(code=CLOSE_UNAUTHORIZED, reason="unknown or revoked device token")
        return
    assert token is not None
    await websocket.accept()
    OPEN_STREAMS.labels("bridge").inc()
    max_bytes = state.settings.INGEST_MAX_BODY_BYTES
    try:
        while True:
            try:
                raw = await receive_text_frame(websocket, max_bytes)
            except FrameError as exc:
                await _error(websocket, None, 413 if "larger" in str(exc) else 422, str(exc))
                continue
            try:
                frame = json.loads(raw)
            except ValueError:
                await _error(websocket, None, 422, "frame is not JSON")
                continue
            kind = frame.get("type") if isinstance(frame, dict) else None
            if kind in _REPORTS:
                await _report(websocket, state, device.id, kind, frame)
                continue
            if kind != "batch":
                await _error(websocket, None, 422, f"unknown frame type {kind!r}")
                continue
            raw_id = frame.get("id")
            batch_id = raw_id if isinstance(raw_id, int) and raw_id >= 0 else None
            try:
                batch = BridgeBatch.model_validate(frame)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                await _error(websocket, batch_id, 422, f"invalid batch: {where}: {first['msg']}")
                continue
            try:
                async with session_scope(state.sessionmaker) as session:
                    # Checked per batch: a revoked device is cut off at its next batch.
                    current = await authenticate_device(session, token)
                    if current is None:
                        await websocket.close(CLOSE_UNAUTHORIZED, "device token revoked")
                        return
                    result = await service.ingest(
                        session, state.pipeline, current, batch.samples, transport="ws"
                    )
            except service.InvalidBatchError as exc:
                await _error(websocket, batch.id, 422, str(exc))
                continue
            except Exception as exc:
                # Nothing of the batch was stored: the agent keeps it spooled and retries.
                log.warning("bridge batch failed: %s", type(exc).__name__)
                await _error(websocket, batch.id, 503, "storage unavailable; retry")
                continue
            ack = BridgeAck(id=batch.id, accepted=result.accepted, duplicates=result.duplicates)
            await websocket.send_text(ack.model_dump_json())
    except WebSocketDisconnect:
        pass
    finally:
        OPEN_STREAMS.labels("bridge").dec()
