# SPDX-License-Identifier: GPL-2.0-or-later
"""A stand-in for the dashboard API, speaking exactly its bridge contract (doc/interface.md).

``POST /api/v1/ingest`` and the WebSocket ``/api/v1/bridge/ws`` with acks. It stands in for the
real server until the agent's end-to-end tests run against it; it keeps samples by
``(device, seq)`` like the real one and records every arrival, so tests can see duplicates.
"""

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from obd2_protocol import BridgeAck, BridgeBatch, BridgeError, IngestBatch, IngestResult, Sample

MAX_BODY_BYTES = 2 * 1024 * 1024


@dataclass
class StandInServer:
    tokens: dict[str, int]
    ack_delay_s: float = 0.0
    samples: dict[tuple[int, int], Sample] = field(default_factory=dict)
    arrivals: int = 0
    duplicates: int = 0
    frames: list[dict[str, Any]] = field(default_factory=list)
    http_batches: int = 0
    ws_batches: int = 0
    websocket_open: bool = True  # False: every WebSocket is refused, the agent falls back to HTTP
    lock: threading.Lock = field(default_factory=threading.Lock)
    _sockets: list[tuple[WebSocket, asyncio.AbstractEventLoop]] = field(default_factory=list)
    port: int = 0

    # ---- storage ------------------------------------------------------------------------
    def store(self, device: int, batch: IngestBatch) -> IngestResult:
        accepted = duplicates = 0
        with self.lock:
            for sample in batch.samples:
                self.arrivals += 1
                if (device, sample.seq) in self.samples:
                    duplicates += 1
                else:
                    self.samples[(device, sample.seq)] = sample
                    accepted += 1
            self.duplicates += duplicates
        return IngestResult(accepted=accepted, duplicates=duplicates)

    def seqs(self, device: int = 1) -> list[int]:
        with self.lock:
            return sorted(seq for d, seq in self.samples if d == device)

    def values(self, pid: str, device: int = 1) -> list[float]:
        with self.lock:
            return [
                s.value
                for (d, _), s in sorted(self.samples.items())
                if d == device and s.pid == pid
            ]

    def frames_of(self, kind: str) -> list[dict[str, Any]]:
        with self.lock:
            return [f for f in self.frames if f.get("type") == kind]

    def send_command(self, frame: dict[str, Any]) -> None:
        for websocket, loop in list(self._sockets):
            asyncio.run_coroutine_threadsafe(websocket.send_text(json.dumps(frame)), loop)

    def _device(self, authorization: str | None) -> int | None:
        if not authorization or not authorization.startswith("Bearer "):
            return None
        return self.tokens.get(authorization.removeprefix("Bearer "))

    # ---- HTTP ---------------------------------------------------------------------------
    async def ingest(self, request: Request) -> JSONResponse:
        device = self._device(request.headers.get("authorization"))
        if device is None:
            return JSONResponse({"detail": "invalid device token"}, status_code=401)
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return JSONResponse({"detail": "body too large"}, status_code=413)
        try:
            batch = IngestBatch.model_validate_json(body)
        except ValidationError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=422)
        if self.ack_delay_s:
            await asyncio.sleep(self.ack_delay_s)
        result = await asyncio.to_thread(self.store, device, batch)
        with self.lock:
            self.http_batches += 1
        return JSONResponse(result.model_dump())

    async def bridge_ws(self, websocket: WebSocket) -> None:
        device = self._device(websocket.headers.get("authorization"))
        if device is None:
            await websocket.close(code=1008)
            return
        if not self.websocket_open:
            await websocket.close(code=1013)
            return
        await websocket.accept()
        entry = (websocket, asyncio.get_running_loop())
        self._sockets.append(entry)
        try:
            while True:
                raw = await websocket.receive_text()
                frame = json.loads(raw)
                if frame.get("type") != "batch":
                    with self.lock:
                        self.frames.append(frame)
                    continue
                try:
                    batch = BridgeBatch.model_validate(frame)
                except ValidationError as exc:
                    error = BridgeError(id=frame.get("id"), status=422, detail=str(exc)[:300])
                    await websocket.send_text(error.model_dump_json())
                    continue
                if self.ack_delay_s:
                    await asyncio.sleep(self.ack_delay_s)
                result = await asyncio.to_thread(self.store, device, batch)
                with self.lock:
                    self.ws_batches += 1
                ack = BridgeAck(id=batch.id, accepted=result.accepted, duplicates=result.duplicates)
                await websocket.send_text(ack.model_dump_json())
        except WebSocketDisconnect:
            pass
        finally:
            self._sockets.remove(entry)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/v1/ingest", self.ingest, methods=["POST"]),
                WebSocketRoute("/api/v1/bridge/ws", self.bridge_ws),
            ]
        )


@contextmanager
def running_standin(server: StandInServer) -> Iterator[StandInServer]:
    config = uvicorn.Config(
        server.app(),
        host="127.0.0.1",
        port=0,
        log_level="warning",
        ws="websockets-sansio",
        lifespan="off",
    )
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started:
        if time.monotonic() > deadline:
            raise RuntimeError("stand-in server did not start")
        time.sleep(0.02)
    server.port = uv.servers[0].sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        uv.should_exit = True
        thread.join(10)
