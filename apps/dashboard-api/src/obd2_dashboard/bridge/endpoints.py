"""The Bridge Agent's WebSocket: the same batches as POST /ingest, each acknowledged by id.

One batch is processed at a time per socket and the next frame is read only after the ack is
sent, so a fast agent is slowed by TCP flow control instead of filling server memory. Reports
(status, DTCs, command results) ride the same socket, and queued commands for the device are
pushed to it. What each frame does is ``bridge.service``'s; this module owns the socket.
"""

import asyncio
import contextlib
import logging

from fastapi import APIRouter, WebSocket
from pydantic import BaseModel
from starlette.websockets import WebSocketDisconnect

from obd2_dashboard.bridge.service import (
    REPORTS,
    BridgeDevice,
    DeviceRevokedError,
    due_commands,
    store_batch,
    store_report,
    unreadable_frame,
)
from obd2_dashboard.dependencies import get_state
from obd2_dashboard.devices.service import authenticate_device
from obd2_dashboard.kit.websocket import FrameError, parse_json_frame, receive_text_frame
from obd2_dashboard.live.hub import OPEN_STREAMS
from obd2_dashboard.presence import service as presence
from obd2_protocol import BridgeError

router = APIRouter(prefix="/bridge", tags=["bridge"])
log = logging.getLogger("obd2_dashboard.bridge")

CLOSE_UNAUTHORIZED = 4401
COMMAND_POLL_S = 2.0


def _bearer(websocket: WebSocket) -> str | None:
    scheme, _, token = websocket.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    return token.strip()


class _Connection:
    def __init__(self, websocket: WebSocket, device: BridgeDevice):
        self.websocket = websocket
        self.device = device
        self.send_lock = asyncio.Lock()
        self.closed = False

    async def send(self, frame: BaseModel) -> None:
        async with self.send_lock:
            if not self.closed:
                await self.websocket.send_text(frame.model_dump_json())

    async def close(self, reason: str) -> None:
        """Closes the socket once, whichever of its tasks finds the device revoked first."""
        async with self.send_lock:
            if not self.closed:
                self.closed = True
                await self.websocket.close(CLOSE_UNAUTHORIZED, reason)

    async def error(self, detail: str) -> None:
        await self.send(BridgeError(id=None, status=422, detail=detail))

    async def push_commands(self) -> None:
        """Sends the device's queued commands, polling for new ones while the socket lives.

        Each poll also checks that the device still may send: a token revoked (by any API
        process) closes its open socket within a poll, not at its next batch.
        """
        while True:
            try:
                for command in await due_commands(self.device):
                    await self.send(command)
            except DeviceRevokedError:
                await self.close("device token revoked")
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("command push failed: %s", type(exc).__name__)
            await asyncio.sleep(COMMAND_POLL_S)


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
    connection = _Connection(
        websocket,
        BridgeDevice(
            device_id=device.id,
            vehicle_id=device.vehicle_id,
            token=token,
            sessionmaker=state.sessionmaker,
            broker=state.broker,
            committer=state.committer,
            thresholds=presence.thresholds(state.settings),
        ),
    )
    pusher = asyncio.create_task(connection.push_commands(), name=f"commands-{device.id}")
    max_bytes = state.settings.INGEST_MAX_BODY_BYTES
    try:
        while True:
            try:
                text = await receive_text_frame(websocket, max_bytes)
                frame = parse_json_frame(text)
            except FrameError as exc:
                await connection.send(unreadable_frame(exc))
                continue
            if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
                await connection.error('expected a JSON object with a "type"')
                continue
            kind = frame["type"]
            if kind in REPORTS:
                refused = await store_report(connection.device, kind, frame, len(text))
                if refused is not None:
                    await connection.send(refused)
            elif kind == "batch":
                try:
                    answer = await store_batch(connection.device, frame)
                except DeviceRevokedError:
                    await connection.close("device token revoked")
                    return
                await connection.send(answer)
            else:
                await connection.error(f"unknown frame type {kind!r}")
    except WebSocketDisconnect:
        pass
    finally:
        pusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pusher
        OPEN_STREAMS.labels("bridge").dec()
