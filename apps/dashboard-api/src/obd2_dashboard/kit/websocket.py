import json

from starlette.websockets import WebSocket, WebSocketDisconnect


class FrameError(Exception):
    """A frame that is not JSON text: the socket answers it with an error and stays open."""


class FrameTooLargeError(FrameError):
    """A frame over the size limit (a 413 where the protocol carries statuses)."""


async def receive_text_frame(websocket: WebSocket, max_bytes: int) -> str:
    """The next text frame; FrameError for a binary or oversized one (the socket stays open)."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    text: str | None = message.get("text")
    if text is None:
        raise FrameError("frames must be JSON text")
    if len(text) > max_bytes:
        raise FrameTooLargeError(f"frame larger than {max_bytes} bytes")
    return text


def parse_json_frame(text: str) -> object:
    """The frame's JSON value; FrameError when it is not JSON.

    Nesting deeper than the interpreter's recursion limit is a RecursionError, not a ValueError:
    from a client, that is one more way of not sending JSON.
    """
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise FrameError("frame is not JSON") from None
