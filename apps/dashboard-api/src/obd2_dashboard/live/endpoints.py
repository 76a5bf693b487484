import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Request, WebSocket, status
from fastapi.responses import StreamingResponse
from starlette.websockets import WebSocketDisconnect

from obd2_dashboard.auth.dependencies import SESSION_COOKIE, CurrentUser
from obd2_dashboard.auth.service import session_digest, user_for_cookie
from obd2_dashboard.dependencies import HubDep, SessionDep, get_state
from obd2_dashboard.kit.schemas import MAX_ID, IdPath, error_responses
from obd2_dashboard.kit.websocket import FrameError, parse_json_frame, receive_text_frame
from obd2_dashboard.live.access import watchable
from obd2_dashboard.live.events import LiveEvent, Reset, parse_event_id
from obd2_dashboard.live.hub import OPEN_STREAMS, Attached, LiveHub, SubscriberOverflowError
from obd2_dashboard.live.revocations import Watch
from obd2_dashboard.vehicles.service import VehicleNotFoundError, get_vehicle, visible_vehicle

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
        event_id = f"id: {event.id}\n" if event.id else ""
        return f"{event_id}event: reset\ndata: {json.dumps({'reason': event.reason})}\n\n"
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
    state = get_state(request)
    heartbeat = float(state.settings.SSE_HEARTBEAT_S)
    recheck_s = state.settings.LIVE_ACCESS_RECHECK_S
    cookie = request.cookies.get(SESSION_COOKIE)
    digest = session_digest(state.settings.session_secret(), cookie or "") or ""
    await hub.revocations.start()

    async def still_allowed() -> bool:
        secret = state.settings.session_secret()
        return bool(await watchable(state.sessionmaker, secret, cookie, [vehicle.id]))

    async def body() -> AsyncIterator[str]:
        OPEN_STREAMS.labels("sse").inc()
        checked_at = time.monotonic()
        try:
            with hub.revocations.watch(digest, user.id) as watch:
                # Signing out or a withdrawn share ends the stream at once (the browser's
                # reconnection then gets its 401 or 404); the re-check below is the backstop.
                batches = hub.event_batches(
                    vehicle.id,
                    resume,
                    invalid_resume=invalid,
                    idle_s=heartbeat,
                    until=watch.ended(vehicle.id),
                )
                async with contextlib.aclosing(batches):
                    # A stream entry goes out in one write: a write per event cost the API,
                    # nginx and the browser more than the events themselves.
                    async for batch in batches:
                        if batch is None or isinstance(batch, Attached):
                            yield _sse_event(batch)
                        else:
                            yield "".join(map(_sse_event, batch))
                        if time.monotonic() - checked_at >= recheck_s:
                            checked_at = time.monotonic()
                            if not await still_allowed():
                                return
        except SubscriberOverflowError:
            return
        finally:
            OPEN_STREAMS.labels("sse").dec()

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _same_origin(websocket: WebSocket) -> bool:
    # A cookie-authenticated WebSocket must refuse other sites' pages (no CORS for sockets).
    origin = websocket.headers.get("origin")
    if origin is None:
        return True
    host = websocket.headers.get("host", "")
    return origin.split("://", 1)[-1].rstrip("/") == host


OVERFLOW_REASON = "the client read too slowly; samples were dropped"


async def _pump(
    websocket: WebSocket, hub: LiveHub, vehicle_id: int, send_lock: asyncio.Lock
) -> None:
    # A WebSocket has no resume point: after an overflow the client is sent a reset and the
    # subscription goes on from the newest samples, with a fresh queue.
    while True:
        try:
            async for item in hub.events(vehicle_id, None):
                if item is None:
                    continue
                if isinstance(item, Attached):
                    # Said once the subscription is live, so nothing published after it is missed.
                    async with send_lock:
                        await websocket.send_text(
                            json.dumps({"type": "subscribed", "vehicle_id": vehicle_id})
                        )
                    continue
                message: dict[str, Any]
                if isinstance(item, Reset):
                    message = {"type": "reset", "vehicle_id": vehicle_id, "reason": item.reason}
                else:
                    message = {
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
            return
        except SubscriberOverflowError:
            reset = {"type": "reset", "vehicle_id": vehicle_id, "reason": OVERFLOW_REASON}
            async with send_lock:
                await websocket.send_text(json.dumps(reset))


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
    digest = session_digest(state.settings.session_secret(), cookie or "") or ""
    await state.hub.revocations.start()
    await websocket.accept()
    OPEN_STREAMS.labels("ws").inc()
    pumps: dict[int, asyncio.Task[None]] = {}
    send_lock = asyncio.Lock()

    async def reply(message: dict[str, Any]) -> None:
        async with send_lock:
            await websocket.send_text(json.dumps(message))

    async def end_subscriptions(allowed: set[int] | None) -> bool:
        """Drops what the viewer may no longer watch; False once signed out (socket closed)."""
        if allowed is None:
            for task in pumps.values():
                task.cancel()
            async with send_lock:
                await websocket.close(code=4401, reason="signed out")
            return False
        for vehicle_id in [v for v in pumps if v not in allowed]:
            pumps.pop(vehicle_id).cancel()
            await reply({"type": "error", "vehicle_id": vehicle_id, "detail": "vehicle not found"})
        return True

    async def follow_access(watch: Watch) -> None:
        # Sign-out and withdrawn shares arrive as events (live.revocations) and act at once;
        # every LIVE_ACCESS_RECHECK_S the database is asked too, as a backstop.
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(watch.changed.wait(), state.settings.LIVE_ACCESS_RECHECK_S)
            if watch.changed.is_set():
                watch.changed.clear()
                allowed = None if watch.signed_out else set(pumps) - watch.withdrawn
                watch.withdrawn.clear()  # a share granted again later may be watched again
            else:
                secret = state.settings.session_secret()
                allowed = await watchable(state.sessionmaker, secret, cookie, list(pumps))
            if not await end_subscriptions(allowed):
                return

    with state.hub.revocations.watch(digest, user.id) as watch:
        rechecks = asyncio.create_task(follow_access(watch))
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
                        {
                            "type": "error",
                            "detail": 'expected {"type": "subscribe", "vehicle_id": N}',
                        }
                    )
                    continue
                kind, vehicle_id = parsed
                if kind == "subscribe":
                    running = pumps.get(vehicle_id)
                    if running is not None and not running.done():
                        await reply({"type": "subscribed", "vehicle_id": vehicle_id})
                        continue
                    if len(pumps) >= MAX_WS_SUBSCRIPTIONS:
                        await reply({"type": "error", "detail": "too many subscriptions"})
                        continue
                    async with state.sessionmaker() as session:
                        owned = await visible_vehicle(session, user.id, vehicle_id)
                    if owned is None:
                        await reply(
                            {
                                "type": "error",
                                "vehicle_id": vehicle_id,
                                "detail": "vehicle not found",
                            }
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
            for task in (rechecks, *pumps.values()):
                task.cancel()
            for task in (rechecks, *pumps.values()):
                with contextlib.suppress(BaseException):
                    await task
            OPEN_STREAMS.labels("ws").dec()
