"""Ends open live streams the moment their viewer signs out or loses a share.

Signing out and withdrawing a share append an entry to the broker stream ``live:revocations``
(after their transaction committed); every API process reads it and ends its own streams of
that session, or that user's streams of that vehicle, within the broker's read latency. The
periodic re-check (``live.access``, every ``LIVE_ACCESS_RECHECK_S``) stays as the backstop for
what no entry announces (an expired session, a broker that was down).
"""

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from obd2_dashboard.kit.broker import Broker

log = logging.getLogger("obd2_dashboard.live")

REVOCATIONS_STREAM = "live:revocations"
# Entries are read within a second of being written; a few minutes of them are plenty.
_MAXLEN = 10_000
_MAX_AGE_MS = 120_000
_READ_BLOCK_MS = 1_000


async def announce_sign_out(broker: Broker, session_digest: str) -> None:
    """``session_digest``: hex SHA-256 of the session's token (as ``user_sessions`` keeps it)."""
    await _announce(broker, {"session": session_digest})


async def announce_share_withdrawn(broker: Broker, vehicle_id: int, user_id: int) -> None:
    await _announce(broker, {"vehicle_id": str(vehicle_id), "user_id": str(user_id)})


async def _announce(broker: Broker, fields: dict[str, str]) -> None:
    # Best effort: the re-check ends the streams anyway, a little later.
    try:
        await broker.xadd(REVOCATIONS_STREAM, fields, _MAXLEN, max_age_ms=_MAX_AGE_MS)
    except Exception as exc:
        log.warning("could not announce a live access revocation: %s", type(exc).__name__)


@dataclass(eq=False, slots=True)
class Watch:
    """What one open stream (an SSE response or a browser socket) learns about its viewer."""

    session_digest: str
    user_id: int
    signed_out: bool = False
    withdrawn: set[int] = field(default_factory=set)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    _endings: dict[int, list[asyncio.Future[None]]] = field(default_factory=dict)

    def ended(self, vehicle_id: int) -> "asyncio.Future[None]":
        """Resolved once the viewer may no longer watch ``vehicle_id``."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.signed_out or vehicle_id in self.withdrawn:
            future.set_result(None)
        else:
            self._endings.setdefault(vehicle_id, []).append(future)
        return future

    def revoke(self, vehicle_id: int | None) -> None:
        """Sign-out (None) or withdrawal of ``vehicle_id``."""
        if vehicle_id is None:
            self.signed_out = True
            ending = [f for futures in self._endings.values() for f in futures]
            self._endings.clear()
        else:
            self.withdrawn.add(vehicle_id)
            ending = self._endings.pop(vehicle_id, [])
        for future in ending:
            if not future.done():
                future.set_result(None)
        self.changed.set()


class RevocationWatcher:
    """One reader of ``live:revocations`` per process, for all of its open streams."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self._watches: set[Watch] = set()
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        """Starts reading (from the stream's end) if not yet; returns once reading."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="live-revocations")
        await self._ready.wait()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @contextlib.contextmanager
    def watch(self, session_digest: str, user_id: int) -> Iterator[Watch]:
        watch = Watch(session_digest, user_id)
        self._watches.add(watch)
        try:
            yield watch
        finally:
            self._watches.discard(watch)

    async def _run(self) -> None:
        position: str | None = None
        backoff = 0.2
        while True:
            try:
                if position is None:
                    position = await self.broker.last_id(REVOCATIONS_STREAM) or "0-0"
                    self._ready.set()
                entries = await self.broker.xread(
                    REVOCATIONS_STREAM, position, count=100, block_ms=_READ_BLOCK_MS
                )
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("live revocations reader: %s", type(exc).__name__)
                self._ready.set()  # streams open meanwhile; the re-check covers them
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            for entry_id, fields in entries:
                position = entry_id
                self._dispatch(fields)

    def _dispatch(self, fields: dict[str, str]) -> None:
        session = fields.get("session")
        if session is not None:
            for watch in list(self._watches):
                if watch.session_digest == session:
                    watch.revoke(None)
            return
        try:
            vehicle_id, user_id = int(fields["vehicle_id"]), int(fields["user_id"])
        except (KeyError, ValueError):
            log.warning("live revocations: an entry of unknown shape was skipped")
            return
        for watch in list(self._watches):
            if watch.user_id == user_id:
                watch.revoke(vehicle_id)
