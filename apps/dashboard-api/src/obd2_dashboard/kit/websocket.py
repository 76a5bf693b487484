from starlette.websockets import WebSocket, WebSocketDisconnect


class FrameError(Exception):
    pass


async def receive_text_frame(websocket: WebSocket, max_bytes: int) -> str:
    """The next text frame; FrameError for a binary or oversized one (the socket stays open)."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    text: str | None = message.get("text")
    if text is None:
        raise FrameError("frames must be JSON text")
    if len(text) > max_bytes:
        raise FrameError(f"frame larger than {max_bytes} bytes")
    return text
