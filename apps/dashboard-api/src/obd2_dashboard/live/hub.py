"""Fans each vehicle's live stream out to the clients of this process.

One reader task per watched vehicle reads the broker; each subscriber gets a queue bounded in
samples (an entry is a whole batch: up to 5 000 samples, 1.6 MB once decoded). A subscriber
that falls that far behind loses its whole backlog at once and is told so at its next
read (``SubscriberOverflowError``): what it got is then an unbroken run up to its last event, so
an SSE client resumes from there with ``Last-Event-ID`` and a WebSocket client is sent a
``reset``. Nothing is buffered without bound, and nothing is skipped silently.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field

from prometheus_client import Gauge

from obd2_dashboard.kit.broker import Broker, parse_stream_id
from obd2_dashboard.live.events import (
    GAP_REASON,
    LiveEvent,
    Reset,
    ResumePoint,
    decode_entry,
    is_gap_entry,
    live_stream,
)
from obd2_dashboard.live.revocations import RevocationWatcher

log = logging.getLogger("obd2_dashboard.live")

# Samples waiting for one subscriber (about 7 MB decoded): a viewer of a busy car gets seconds of
# slack, a client that stopped reading costs no more than that.
SUBSCRIBER_QUEUE_SAMPLES = 20_000
_READ_BLOCK_MS = 1_000
# Entries read per page when replaying after Last-Event-ID: at most ~23 MB of raw batches.
_REPLAY_PAGE = 100

# livesum: with several worker processes, the total over the live ones.
OPEN_STREAMS = Gauge(
    "obd2_live_streams_open", "Open live streams", ["transport"], multiprocess_mode="livesum"
)
WATCHED_VEHICLES = Gauge(
    "obd2_live_vehicles_watched",
    "Vehicles with a live reader in a process",
    multiprocess_mode="livesum",
)


class SubscriberOverflowError(Exception):
    """The client read too slowly; it must reconnect (and resume)."""


@dataclass(frozen=True, slots=True)
class Attached:
    """The first item of every subscription: whatever is published from now on is delivered."""


def _decode(entry_id: str, fields: dict[str, str]) -> list[LiveEvent | Reset]:
    if is_gap_entry(fields):
        return [Reset(GAP_REASON, f"{entry_id}.0")]
    return list(decode_entry(entry_id, fields))


@dataclass(eq=False, slots=True)
class _Subscriber:
    # Each item is one broker entry, decoded once by the reader for all its subscribers; None
    # (always alone in the queue) means the backlog was dropped.
    queue: asyncio.Queue[list[LiveEvent | Reset] | None] = field(default_factory=asyncio.Queue)
    queued_samples: int = 0
    overflowed: bool = False
    stopped: bool = False

    def stop(self) -> None:
        """Ends the subscription at its next read, whatever is queued."""
        self.stopped = True
        self.queue.put_nowait([])  # wakes a reader waiting on an empty queue

    def offer(self, events: list[LiveEvent | Reset]) -> bool:
        """Queues ``events``; False (and the backlog dropped) when that would pass the bound."""
        if self.queued_samples + len(events) > SUBSCRIBER_QUEUE_SAMPLES:
            # The whole backlog goes, not just its oldest entry: dropping one entry and keeping
            # the rest would hand the client newer events after a hole it could not see, and its
            # resume point would then lie past the hole.
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queued_samples = 0
            self.overflowed = True
            self.queue.put_nowait(None)
            return False
        self.queued_samples += len(events)
        self.queue.put_nowait(events)
        return True

    async def take(self) -> list[LiveEvent | Reset] | None:
        events = await self.queue.get()
        if events is not None:
            self.queued_samples -= len(events)
        return events


class _VehicleReader:
    def __init__(self, broker: Broker, vehicle_id: int) -> None:
        self.broker = broker
        self.stream = live_stream(vehicle_id)
        self.position: str | None = None
        self.subscribers: set[_Subscriber] = set()
        self.ready = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        backoff = 0.2
        while True:
            try:
                if self.position is None:
                    self.position = await self.broker.last_id(self.stream) or "0-0"
                    self.ready.set()
                entries = await self.broker.xread(
                    self.stream, self.position, count=100, block_ms=_READ_BLOCK_MS
                )
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("live reader for %s: %s", self.stream, type(exc).__name__)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            for entry in entries:
                self.position = entry[0]
                if not self.subscribers:
                    continue
                events = _decode(*entry)
                for subscriber in list(self.subscribers):
                    if not subscriber.offer(events):
                        self.subscribers.discard(subscriber)


class LiveHub:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self._readers: dict[int, _VehicleReader] = {}
        self.revocations = RevocationWatcher(broker)

    async def close(self) -> None:
        await self.revocations.close()
        for reader in self._readers.values():
            if reader.task is not None:
                reader.task.cancel()
        for reader in self._readers.values():
            if reader.task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await reader.task
        self._readers.clear()

    async def _attach(self, vehicle_id: int) -> tuple[_VehicleReader, _Subscriber]:
        reader = self._readers.get(vehicle_id)
        if reader is None:
            reader = self._readers[vehicle_id] = _VehicleReader(self.broker, vehicle_id)
            reader.task = asyncio.create_task(reader.run(), name=f"live-reader-{vehicle_id}")
            WATCHED_VEHICLES.set(len(self._readers))
        await reader.ready.wait()
        subscriber = _Subscriber()
        reader.subscribers.add(subscriber)
        return reader, subscriber

    def _detach(self, vehicle_id: int, reader: _VehicleReader, subscriber: _Subscriber) -> None:
        reader.subscribers.discard(subscriber)
        if not reader.subscribers and self._readers.get(vehicle_id) is reader:
            del self._readers[vehicle_id]
            if reader.task is not None:
                reader.task.cancel()
            WATCHED_VEHICLES.set(len(self._readers))

    async def event_batches(
        self,
        vehicle_id: int,
        resume: ResumePoint | None,
        *,
        invalid_resume: bool = False,
        idle_s: float | None = None,
        until: "asyncio.Future[None] | None" = None,
    ) -> AsyncGenerator[Attached | list[LiveEvent | Reset] | None, None]:
        """Live events of one vehicle, a stream entry at a time, first replaying what followed
        ``resume``. The lists are shared with other subscribers: read them, never change them.

        Starts with ``Attached`` (tell the client it is connected then, not before, or what is
        published in between is missed). With ``idle_s``, a None whenever that long passes
        without an event (for heartbeats). A ``Reset`` where the stream carries a gap marker.
        Ends with ``SubscriberOverflowError`` when the consumer fell a whole queue behind
        (everything before it was delivered), and returns as soon as ``until`` is done (the
        viewer signed out or lost the vehicle: ``live.revocations``).
        """
        reader, subscriber = await self._attach(vehicle_id)
        if until is not None:
            until.add_done_callback(lambda _: subscriber.stop())
        # Entries up to here come from the replay, later ones from the queue: no gap, no repeat.
        attached_at = reader.position or "0-0"
        try:
            yield Attached()
            if invalid_resume:
                yield [Reset("the Last-Event-ID is not one this server issued")]
            elif resume is not None:
                async for replayed in self._replay(reader.stream, resume, attached_at):
                    yield replayed
            while True:
                try:
                    # A timeout on the queue itself: a task per event to race a timer cost more
                    # than the rest of the fan-out to a viewer.
                    async with asyncio.timeout(idle_s):
                        batch = await subscriber.take()
                except TimeoutError:
                    yield None
                    continue
                if subscriber.stopped:
                    return
                if batch is None:
                    raise SubscriberOverflowError
                yield batch
        finally:
            self._detach(vehicle_id, reader, subscriber)

    async def events(
        self,
        vehicle_id: int,
        resume: ResumePoint | None,
        *,
        invalid_resume: bool = False,
        idle_s: float | None = None,
    ) -> AsyncGenerator[Attached | LiveEvent | Reset | None, None]:
        """``event_batches``, one event at a time."""
        batches = self.event_batches(
            vehicle_id, resume, invalid_resume=invalid_resume, idle_s=idle_s
        )
        try:
            async for batch in batches:
                if batch is None or isinstance(batch, Attached):
                    yield batch
                    continue
                for event in batch:
                    yield event
        finally:
            await batches.aclose()

    async def _replay(
        self, stream: str, resume: ResumePoint, until: str
    ) -> AsyncIterator[list[LiveEvent | Reset]]:
        first = await self.broker.first_id(stream)
        resume_key = parse_stream_id(resume.entry_id)
        until_key = parse_stream_id(until)
        if resume_key > until_key:
            yield [Reset("the Last-Event-ID is ahead of this stream")]
            return
        if first is None or parse_stream_id(first) > resume_key:
            if resume_key < until_key:
                yield [Reset("samples after the Last-Event-ID are no longer retained")]
            return
        start = resume.entry_id
        while True:
            page = await self.broker.xrange(stream, start, count=_REPLAY_PAGE)
            for entry_id, fields in page:
                key = parse_stream_id(entry_id)
                if key > until_key:
                    return
                if key == resume_key and is_gap_entry(fields):
                    continue
                batch = _decode(entry_id, fields)
                if key == resume_key:
                    batch = [
                        e
                        for e in batch
                        if not isinstance(e, LiveEvent)
                        or int(e.id.rsplit(".", 1)[1]) > resume.index
                    ]
                if batch:
                    yield batch
            if len(page) < _REPLAY_PAGE:
                return
            last = parse_stream_id(page[-1][0])
            start = f"{last[0]}-{last[1] + 1}"
