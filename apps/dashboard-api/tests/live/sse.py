import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass(slots=True)
class SseEvent:
    event: str = "message"
    id: str | None = None
    data: str = ""
    comments: list[str] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.data)


async def sse_events(response: httpx.Response) -> AsyncIterator[SseEvent]:
    """Parses a text/event-stream; comment-only blocks come out as event "comment"."""
    current = SseEvent()
    async for line in response.aiter_lines():
        if line == "":
            if current.data or current.id or current.event != "message":
                yield current
            elif current.comments:
                current.event = "comment"
                yield current
            current = SseEvent()
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "":
            current.comments.append(value)
        elif name == "event":
            current.event = value
        elif name == "id":
            current.id = value
        elif name == "data":
            current.data = f"{current.data}\n{value}" if current.data else value


async def next_event(events: AsyncIterator[SseEvent], kind: str, timeout: float = 10) -> SseEvent:
    async def find() -> SseEvent:
        async for event in events:
            if event.event == kind:
                return event
        raise AssertionError("stream ended")

    return await asyncio.wait_for(find(), timeout)
