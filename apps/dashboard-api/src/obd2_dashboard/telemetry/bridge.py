"""The Bridge Agent's WebSocket: the same batches as POST /ingest, each acknowledged by id.

One batch is processed at a time per socket and the next frame is read only after the ack is
sent, so a fast agent is slowed by TCP flow control instead of filling server memory. Reports
(status, DTCs, command results) ride the same socket, and queued commands for the device are
pushed to it.
"""

import asyncio
import contextlib
import json
import logging
from functools import partial

from fastapi import APIRouter, WebSocket
from pydantic import ValidationError
from starlette.websockets import WebSocketDisconnect

from obd2_dashboard.dependencies import AppState, get_state
from obd2_dashboard.devices.service import (
    authenticate_device,
    device_is_active,
    device_report_key,
)
from obd2_dashboard.dtcs import service as dtcs
from obd2_dashboard.dtcs.codes import describe
from obd2_dashboard.kit.db import after_commit, session_scope, utcnow
from obd2_dashboard.kit.websocket import FrameError, parse_json_frame, receive_text_frame
from obd2_dashboard.live.hub import OPEN_STREAMS
from obd2_dashboard.mqtt.events import publish_dtc_event
from obd2_dashboard.presence import service as presence
from obd2_dashboard.telemetry import service
from obd2_dashboard.telemetry.committer import BUSY_DETAIL, DeviceRejectedError, IngestBusyError
from obd2_dashboard.telemetry.repository import SampleRepository
from obd2_protocol import (
    MAX_REPORT_FRAME_CHARS,
    BridgeAck,
    BridgeBatch,
    BridgeClearDtcs,
    BridgeCommandResult,
    BridgeDtcReport,
    BridgeError,
    BridgeStatus,
)

router = APIRouter(prefix="/bridge", tags=["bridge"])
log = logging.getLogger("obd2_dashboard.bridge")

CLOSE_UNAUTHORIZED = 4401
COMMAND_POLL_S = 2.0

Report = BridgeStatus | BridgeDtcReport | BridgeCommandResult
_REPORTS: dict[str, type[Report]] = {
    "status": BridgeStatus,
    "dtcs": BridgeDtcReport,
    "command_result": BridgeCommandResult,
}


def _encoded_size(value: object) -> int:
    try:
        return len(json.dumps(value))
    except (ValueError, RecursionError):
        return 0


def _oversized_report(kind: str, frame: dict[str, object], size: int) -> str:
    """The error for a report frame over the size limit, naming its largest field."""
    sizes = {key: _encoded_size(value) for key, value in frame.items() if key != "type"}
    largest = max(sizes, key=sizes.__getitem__, default=None)
    where = f"{largest}: " if largest is not None else ""
    return (
        f"invalid {kind}: {where}frame of {size} characters is over the limit of "
        f"{MAX_REPORT_FRAME_CHARS} for reports"
    )


def _bearer(websocket: WebSocket) -> str | None:
    scheme, _, token = websocket.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    return token.strip()


class _Connection:
    def __init__(self, websocket: WebSocket, state: AppState, device_id: int, vehicle_id: int):
        self.websocket = websocket
        self.state = state
        self.device_id = device_id
        self.vehicle_id = vehicle_id
        self.send_lock = asyncio.Lock()
        self.closed = False

    async def send(self, text: str) -> None:
        async with self.send_lock:
            if not self.closed:
                await self.websocket.send_text(text)

    async def close(self, reason: str) -> None:
        """Closes the socket once, whichever of its tasks finds the device revoked first."""
        async with self.send_lock:
            if not self.closed:
                self.closed = True
                await self.websocket.close(CLOSE_UNAUTHORIZED, reason)

    async def error(self, batch_id: int | None, status: int, detail: str) -> None:
        await self.send(BridgeError(id=batch_id, status=status, detail=detail).model_dump_json())

    async def report(self, kind: str, frame: dict[str, object], size: int) -> None:
        """Keeps one report; an error frame, and nothing kept, for one over any wire limit."""
        if size > MAX_REPORT_FRAME_CHARS:
            await self.error(None, 413, _oversized_report(kind, frame, size))
            return
        try:
            report = _REPORTS[kind].model_validate(frame)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            await self.error(None, 422, f"invalid {kind}: {where}: {first['msg']}")
            return
        try:
            async with session_scope(self.state.sessionmaker) as session:
                if isinstance(report, BridgeStatus):
                    await SampleRepository(session).touch_reported(
                        self.device_id,
                        utcnow(),
                        presence.thresholds(self.state.settings),
                        report.agent_version,
                        report.adapter_state,
                    )
                elif isinstance(report, BridgeDtcReport):
                    new = await dtcs.apply_report(session, self.vehicle_id, report)
                    if new:
                        after_commit(session, partial(self._announce_dtcs, new))
                else:
                    await dtcs.record_result(session, self.device_id, report)
        except Exception as exc:
            # The agent sends its reports again; the socket and its batches go on.
            log.warning("device report not stored: %s", type(exc).__name__)
            await self.error(None, 503, f"{kind} not stored; storage unavailable")
            return
        try:
            # The newest report of each kind, where every API process can read it.
            await self.state.broker.set(
                device_report_key(kind, self.device_id), report.model_dump_json()
            )
        except Exception as exc:
            log.warning("device report not kept: %s", type(exc).__name__)

    async def _announce_dtcs(self, new: list[tuple[str, str]]) -> None:
        for code, kind in new:
            await publish_dtc_event(
                self.state.broker,
                self.vehicle_id,
                code,
                kind,
                description=describe(code).description,
            )

    async def push_commands(self) -> None:
        """Sends the device's queued commands, polling for new ones while the socket lives.

        Each poll also checks that the device still may send: a token revoked (by any API
        process) closes its open socket within a poll, not at its next batch.
        """
        while True:
            try:
                async with session_scope(self.state.sessionmaker) as session:
                    if not await device_is_active(session, self.device_id):
                        await self.close("device token revoked")
                        return
                    due = await dtcs.due_commands(session, self.device_id)
                for command in due:
                    if command.kind == dtcs.CLEAR_DTCS:
                        await self.send(BridgeClearDtcs(id=command.id).model_dump_json())
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("command push failed: %s", type(exc).__name__)
            await asyncio.sleep(COMMAND_POLL_S)

    async def batch(self, token: str, frame: dict[str, object]) -> bool:
        """Stores one batch and acks it; False when the device lost its right to send."""
        raw_id = frame.get("id")
        batch_id = raw_id if isinstance(raw_id, int) and raw_id >= 0 else None
        try:
            batch = BridgeBatch.model_validate(frame)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            await self.error(batch_id, 422, f"invalid batch: {where}: {first['msg']}")
            return True
        try:
            # The token is checked with each batch: a revoked device is cut off at its next.
            result = await self.state.committer.store(token, batch.samples, transport="ws")
        except DeviceRejectedError:
            return False
        except service.InvalidBatchError as exc:
            await self.error(batch.id, 422, str(exc))
            return True
        except IngestBusyError:
            await self.error(batch.id, 503, BUSY_DETAIL)
            return True
        except Exception as exc:
            # Nothing of the batch was stored: the agent keeps it spooled and retries.
            log.warning("bridge batch failed: %s", type(exc).__name__)
            await self.error(batch.id, 503, "storage unavailable; retry")
            return True
        ack = BridgeAck(id=batch.id, accepted=result.accepted, duplicates=result.duplicates)
        await self.send(ack.model_dump_json())
        return True


@router.websocket("/ws")
async def bridge_socket(websocket: WebSocket) -> None:
    state = get_state(websocket)  # type: ignore[arg-type]
    token = _bearer(websocket)
    async with state.sessionmaker() as session:
        device = await authenticate_device(session, token) if token else None
    if device is None or token is None:
        await websocket.close(code=CLOSE_UNAUTHORIZED, reason="unknown or revoked device token")
        return
    await websocket.accept()
    OPEN_STREAMS.labels("bridge").inc()
    connection = _Connection(websocket, state, device.id, device.vehicle_id)
    pusher = asyncio.create_task(connection.push_commands(), name=f"commands-{device.id}")
    max_bytes = state.settings.INGEST_MAX_BODY_BYTES
    try:
        while True:
            try:
                text = await receive_text_frame(websocket, max_bytes)
                frame = parse_json_frame(text)
            except FrameError as exc:
                await connection.error(None, 413 if "larger" in str(exc) else 422, str(exc))
                continue
            if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
                await connection.error(None, 422, 'expected a JSON object with a "type"')
                continue
            kind = frame["type"]
            if kind in _REPORTS:
                await connection.report(kind, frame, len(text))
            elif kind == "batch":
                if not await connection.batch(token, frame):
                    await connection.close("device token revoked")
                    return
            else:
                await connection.error(None, 422, f"unknown frame type {kind!r}")
    except WebSocketDisconnect:
        pass
    finally:
        pusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pusher
        OPEN_STREAMS.labels("bridge").dec()
