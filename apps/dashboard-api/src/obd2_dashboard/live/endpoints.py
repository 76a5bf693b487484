import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Request, WebSocket, status
from fastapi.responses import StreamingResponse
from starlette.websockets import WebSocketDisconnect

from obd2_dashboard.auth.dependencies import SESSION_COOKIE, CurrentUser
from obd2_dashboard.auth.service import user_for_cookie
from obd2_dashboard.dependencies import HubDep, SessionDep, get_state
from obd2_dashboard.kit.schemas import MAX_ID, IdPath, error_responses
from obd2_dashboard.kit.websocket import FrameError, parse_json_frame, receive_text_frame
from obd2_dashboard.live.events import LiveEvent, parse_event_id
from obd2_dashboard.live.hub import (
    OPEN_STREAMS,
    Attached,
    LiveHub,
    Reset,
    SubscriberOverflowError,
)
from obd2_dashboard.vehicles.repository import VehicleRepository
from obd2_dashboard.vehicles.service import VehicleNotFoundError, get_vehicle

router = APIRouter(prefix="/streams", tags=["live"])

HEARTBEAT_S = 10.0
MAX_WS_SUBSCRIPTIONS = 50
MAX_WS_MESSAGE_BYTES = 4096


CONNECTED = ": connected\nretry: 2000\n\n"
KEEPALIVE = ": keepalive\n\n"


def _sse_event(event: Attached | LiveEvent | Reset | None) -> str:
    if event is None:
        return KEEPALIVE
    if isinstance(event, Attached):
        return CONNECTED
    if isinstance(event, Reset):
        return f"event: reset\ndata: {json.dumps({'reason': event.reason})}\n\n"
    return f"id: {event.id}\nevent: sample\ndata: {event.sample.as_json()}\n\n"


@router.get(
    "/vehicles/{vehicle_id}",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "sample and reset events",
        },
        **error_responses(401, 404, 422),
    },
    summary="Live samples of a vehicle as Server-Sent Events (resume with Last-Event-ID)",
)
async def vehicle_events(
    vehicle_id: IdPath,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    hub: HubDep,
    last_event_id: Annotated[str | None, Header(max_length=100)] = None,
) -> StreamingResponse:
    try:
        vehicle = await get_vehicle(session, user, vehicle_id)
    except VehicleNotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    resume = parse_event_id(last_event_id) if last_event_id else None
    invalid = bool(last_event_id) and resume is None
    heartbeat = float(request.app.state.obd2.settings.SSE_HEARTBEAT_S)

    async def body() -> AsyncIterator[str]:
        OPEN_STREAMS.labels("sse").inc()
        try:
            events = hub.events(vehicle.id, resume, invalid_resume=invalid, idle_s=heartbeat)
            async for item in events:
                yield _sse_event(item)
        except SubscriberOverflowError:
            return
        finally:
            OPEN_STREAMS.labels("sse").dec()

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _same_origin(websocket: WebSocket) -> bool:
    # A cookie-authenticated WebSocket must refuse other sites' pages (no CORS for sockets).
    origin = websocket.headers.get("origin")
    if origin is None:
        return True
    host = websocket.headers.get("host", "")
    return origin.split("://", 1)[-1].rstrip("/") == host


async def _pump(
    websocket: WebSocket, hub: LiveHub, vehicle_id: int, send_lock: asyncio.Lock
) -> None:
    try:
        async for item in hub.events(vehicle_id, None):
            if isinstance(item, Attached):
                # Said once the subscription is live, so nothing published after it is missed.
                async with send_lock:
                    await websocket.send_text(
                        json.dumps({"type": "subscribed", "vehicle_id": vehicle_id})
                    )
                continue
            if item is None or isinstance(item, Reset):
                continue
            message: dict[str, Any] = {
                "type": "sample",
                "vehicle_id": vehicle_id,
                "id": item.id,
                "seq": item.sample.seq,
                "ts": item.sample.ts,
                "pid": item.sample.pid,
                "value": item.sample.value,
            }
            async with send_lock:
                await websocket.send_text(json.dumps(message, separators=(",", ":")))
    except SubscriberOverflowError:
        async with send_lock:
            await websocket.send_text(json.dumps({"type": "overflow", "vehicle_id": vehicle_id}))


def _parse_subscription(raw: str) -> tuple[str, int] | None:
    try:
        message = parse_json_frame(raw)
    except FrameError:
        return None
    if not isinstance(message, dict):
        return None
    kind, vehicle_id = message.get("type"), message.get("vehicle_id")
    if not isinstance(kind, str) or type(vehicle_id) is not int or not 1 <= vehicle_id <= MAX_ID:
        return None
    return kind, vehicle_id


@router.websocket("/ws")
async def browser_socket(websocket: WebSocket) -> None:
    """Browsers subscribe to vehicles: {"type": "subscribe" | "unsubscribe", "vehicle_id": N}."""
    state = get_state(websocket)  # type: ignore[arg-type]
    if not _same_origin(websocket):
        await websocket.close(code=4403, reason="cross-origin socket refused")
        return
    cookie = websocket.cookies.get(SESSION_COOKIE)
    async with state.sessionmaker() as session:
        user = (
            await user_for_cookie(session, state.settings.session_secret(), cookie)
            if cookie
            else None
        )
    if user is None:
        await websocket.close(code=4401, reason="not signed in")
        return
    await websocket.accept()
    OPEN_STREAMS.labels("ws").inc()
    pumps: dict[int, asyncio.Task[None]] = {}
    send_lock = asyncio.Lock()

    async def reply(message: dict[str, Any]) -> None:
        async with send_lock:
            await websocket.send_text(json.dumps(message))

    try:
        while True:
            try:
                raw = await receive_text_frame(websocket, MAX_WS_MESSAGE_BYTES)
            except FrameError as exc:
                await reply({"type": "error", "detail": str(exc)})
                continue
            parsed = _parse_subscription(raw)
            if parsed is None:
                await reply(
                    {"type": "error", "detail": 'expected {"type": "subscribe", "vehicle_id": N}'}
                )
                continue
            kind, vehicle_id = parsed
            if kind == "subscribe":
                if vehicle_id in pumps:
                    await reply({"type": "subscribed", "vehicle_id": vehicle_id})
                    continue
                if len(pumps) >= MAX_WS_SUBSCRIPTIONS:
                    await reply({"type": "error", "detail": "too many subscriptions"})
                    continue
                async with state.sessionmaker() as session:
                    owned = await VehicleRepository(session).get_visible(user.id, vehicle_id)
                if owned is None:
                    await reply(
                        {"type": "error", "vehicle_id": vehicle_id, "detail": "vehicle not found"}
                    )
                    continue
                pumps[vehicle_id] = asyncio.create_task(
                    _pump(websocket, state.hub, vehicle_id, send_lock)
                )
            elif kind == "unsubscribe":
                task = pumps.pop(vehicle_id, None)
                if task is not None:
                    task.cancel()
                await reply({"type": "unsubscribed", "vehicle_id": vehicle_id})
            else:
                await reply({"type": "error", "detail": f"unknown message type {kind!r}"})
    except WebSocketDisconnect:
        pass
    finally:
        for task in pumps.values():
            task.cancel()
        for task in pumps.values():
            with contextlib.suppress(BaseException):
                await task
        OPEN_STREAMS.labels("ws").dec()
