# SPDX-License-Identifier: GPL-2.0-or-later
"""Moves spooled samples to the server; deletes them only once the server acknowledged them.

One batch is in flight at a time, so every acknowledgement covers an exact seq range. When a
backlog has built up (network was down), batches alternate between the oldest samples and the
newest ones, so the backlog drains oldest first while the live view keeps moving.
"""

import asyncio
import contextlib
import logging
import queue
import random
import time
from typing import Any

import httpx
from pydantic import TypeAdapter, ValidationError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from obd2_bridge import __version__
from obd2_bridge.config import AgentConfig
from obd2_bridge.reader.poller import OutboundFrame
from obd2_bridge.spool import Spool, SpooledSample
from obd2_bridge.status import AgentState, now_ms
from obd2_protocol import (
    BridgeAck,
    BridgeBatch,
    BridgeClearDtcs,
    BridgeError,
    IngestBatch,
    IngestResult,
    Sample,
    ServerFrame,
)

log = logging.getLogger(__name__)

_server_frame: TypeAdapter[ServerFrame] = TypeAdapter(ServerFrame)
# Above this backlog, batches alternate between the oldest and the newest samples.
LIVE_SHARE_THRESHOLD = 500
LIVE_BATCH = 200
IDLE_POLL_S = 0.2


class UploadError(Exception):
    """The server could not take a batch now; try again after a backoff."""


class AuthError(UploadError):
    pass


def batch_size_for(backlog: int, max_batch: int) -> int:
    """Small backlogs go out whole (low latency); large ones in the largest batches allowed."""
    return max(1, min(backlog, max_batch))


class Backoff:
    def __init__(self, minimum: float, maximum: float) -> None:
        self.minimum = minimum
        self.maximum = maximum
        self.attempt = 0

    def reset(self) -> None:
        self.attempt = 0

    def next(self) -> float:
        """Exponential with full jitter, never under the minimum."""
        ceiling = min(self.maximum, self.minimum * 2**self.attempt)
        self.attempt += 1
        return random.uniform(self.minimum, max(self.minimum, ceiling))  # noqa: S311 - jitter


def ws_url(api_url: str) -> str:
    base = api_url.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base.removeprefix("https://")
    elif base.startswith("http://"):
        base = "ws://" + base.removeprefix("http://")
    return base + "/api/v1/bridge/ws"


def _samples(rows: list[SpooledSample]) -> list[Sample]:
    return [Sample(seq=r.seq, ts=r.ts, pid=r.pid, value=r.value) for r in rows]


class Uploader:
    def __init__(
        self,
        config: AgentConfig,
        spool: Spool,
        state: AgentState,
        commands: "queue.Queue[BridgeClearDtcs]",
        outbound: "queue.Queue[OutboundFrame]",
    ) -> None:
        self.config = config
        self.spool = spool
        self.state = state
        self.commands = commands
        self.outbound = outbound
        self.max_batch = min(config.upload_max_batch, 5000)
        self.backoff = Backoff(config.upload_backoff_min_s, config.upload_backoff_max_s)
        self._next_id = 1
        self._take_newest = False
        self._pending_frames: list[str] = []
        self._last_status = 0.0
        self._http: httpx.AsyncClient | None = None
        self._ws_down_until = 0.0

    # ---- choosing what to send ----------------------------------------------------------
    def next_batch(self) -> list[SpooledSample]:
        backlog = self.spool.backlog()
        if backlog == 0:
            return []
        if backlog > LIVE_SHARE_THRESHOLD:
            self._take_newest = not self._take_newest
            if self._take_newest:
                return self.spool.newest(min(LIVE_BATCH, self.max_batch))
        return self.spool.oldest(batch_size_for(backlog, self.max_batch))

    def _acknowledged(self, rows: list[SpooledSample], accepted: int, duplicates: int) -> None:
        self.spool.delete_range(rows[0].seq, rows[-1].seq)
        self.state.last_upload_ts = now_ms()
        self.state.uploaded += len(rows)
        self.backoff.reset()
        log.debug("uploaded %d (+%d duplicates)", accepted, duplicates)

    def _refused(self, rows: list[SpooledSample], status: int, detail: str) -> None:
        if status == 401:
            raise AuthError(f"the server refused the device token (401): {detail}")
        if status == 413:
            self.max_batch = max(1, len(rows) // 2)
            log.warning("batch of %d too large (413): now %d", len(rows), self.max_batch)
            return
        if status == 422:
            moved = self.spool.reject_range(rows[0].seq, rows[-1].seq, detail)
            log.error("server rejected %d samples as invalid (422): %s", moved, detail)
            return
        raise UploadError(f"server answered {status}: {detail}")

    def _queue_frames(self) -> None:
        while True:
            try:
                frame = self.outbound.get_nowait()
            except queue.Empty:
                break
            self._pending_frames.append(frame.model_dump_json())
        now = time.monotonic()
        if now - self._last_status >= self.config.status_interval_s:
            self._last_status = now
            status = self.state.snapshot(self.spool.backlog(), self.spool.dropped())
            self._pending_frames.append(status.model_dump_json())

    # ---- the loop -----------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        headers = {
            "Authorization": f"Bearer {self.config.token}",
            "User-Agent": f"obd2-bridge/{__version__}",
        }
        async with httpx.AsyncClient(headers=headers, timeout=self.config.ack_timeout_s) as http:
            self._http = http
            while not stop.is_set():
                try:
                    if time.monotonic() >= self._ws_down_until:
                        await self._websocket(headers, stop)
                    else:
                        await self._http_round(stop)
                        continue
                except AuthError as exc:
                    log.error("%s", exc)  # noqa: TRY400 - a refusal, not a bug: no traceback
                    self.state.transport = "refused"
                except (
                    UploadError,
                    OSError,
                    TimeoutError,
                    ConnectionClosed,
                    InvalidHandshake,
                ) as exc:
                    log.warning("upload: %s", exc or type(exc).__name__)
                    self._ws_down_until = time.monotonic() + self.config.websocket_retry_s
                    self.state.transport = "http"
                    with contextlib.suppress(UploadError, httpx.HTTPError, OSError):
                        if await self._http_round(stop):
                            continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.backoff.next())

    async def _http_round(self, stop: asyncio.Event) -> bool:
        """Send whatever is spooled over HTTP until it is empty; False when a send failed."""
        assert self._http is not None
        url = self.config.api_url.rstrip("/") + "/api/v1/ingest"
        while not stop.is_set() and time.monotonic() < self._ws_down_until:
            rows = self.next_batch()
            if not rows:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), IDLE_POLL_S)
                continue
            body = IngestBatch(samples=_samples(rows)).model_dump_json()
            try:
                response = await self._http.post(
                    url, content=body, headers={"Content-Type": "application/json"}
                )
            except httpx.HTTPError as exc:
                raise UploadError(f"HTTP upload failed: {exc!r}") from exc
            if response.status_code == 200:
                result = IngestResult.model_validate_json(response.content)
                self._acknowledged(rows, result.accepted, result.duplicates)
                self.state.transport = "http"
            else:
                self._refused(rows, response.status_code, response.text[:300])
        return True

    async def _websocket(self, headers: dict[str, str], stop: asyncio.Event) -> None:
        try:
            async with connect(
                ws_url(self.config.api_url),
                additional_headers=headers,
                open_timeout=10,
                ping_interval=20,
                ping_timeout=20,
                close_timeout=2,
                max_size=2**20,
            ) as ws:
                log.info("connected to %s", ws_url(self.config.api_url))
                self.state.transport = "websocket"
                self.backoff.reset()
                await self._ws_session(ws, stop)
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status == 401:
                raise AuthError("the server refused the device token (401)") from exc
            raise UploadError(f"WebSocket refused with {status}") from exc

    async def _ws_session(self, ws: ClientConnection, stop: asyncio.Event) -> None:
        acks: dict[int, asyncio.Future[BridgeAck | BridgeError]] = {}
        receiver = asyncio.create_task(self._receive(ws, acks))
        try:
            while not stop.is_set():
                if receiver.done():
                    receiver.result()
                    raise UploadError("the server closed the WebSocket")
                self._queue_frames()
                while self._pending_frames:
                    await ws.send(self._pending_frames[0])
                    self._pending_frames.pop(0)
                rows = self.next_batch()
                if not rows:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), IDLE_POLL_S)
                    continue
                batch_id = self._next_id
                self._next_id += 1
                future: asyncio.Future[BridgeAck | BridgeError] = (
                    asyncio.get_running_loop().create_future()
                )
                acks[batch_id] = future
                await ws.send(BridgeBatch(id=batch_id, samples=_samples(rows)).model_dump_json())
                waiters: set[asyncio.Future[Any]] = {future, receiver}
                done, _ = await asyncio.wait(
                    waiters,
                    timeout=self.config.ack_timeout_s,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                acks.pop(batch_id, None)
                if future not in done:
                    if receiver in done:
                        receiver.result()
                        raise UploadError("the server closed the WebSocket before acknowledging")
                    raise UploadError(f"no acknowledgement within {self.config.ack_timeout_s:g} s")
                reply = future.result()
                if isinstance(reply, BridgeAck):
                    self._acknowledged(rows, reply.accepted, reply.duplicates)
                else:
                    self._refused(rows, reply.status, reply.detail)
        finally:
            receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await receiver

    async def _receive(
        self, ws: ClientConnection, acks: dict[int, "asyncio.Future[BridgeAck | BridgeError]"]
    ) -> None:
        async for raw in ws:
            try:
                frame = _server_frame.validate_json(raw)
            except ValidationError:
                log.warning("ignored an unknown frame from the server: %.200s", raw)
                continue
            if isinstance(frame, BridgeClearDtcs):
                log.warning("server asks to clear the trouble codes (command %d)", frame.id)
                self.commands.put(frame)
                continue
            if frame.id is None:
                log.error("server error: %s %s", frame.status, getattr(frame, "detail", ""))
                continue
            future = acks.get(frame.id)
            if future is not None and not future.done():
                future.set_result(frame)
