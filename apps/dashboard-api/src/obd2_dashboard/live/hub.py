"""Fans each vehicle's live stream out to the clients of this process.

One reader task per watched vehicle reads the broker; each subscriber gets a queue bounded in
samples (an entry is a whole batch: up to 5 000 samples, 1.6 MB once decoded). A subscriber
that falls that far behind is dropped and its queue emptied at once (its client reconnects and
resumes with ``Last-Event-ID``) rather than buffered without bound.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from prometheus_client import Gauge

from obd2_dashboard.kit.broker import Broker, parse_stream_id
from obd2_dashboard.live.events import LiveEvent, ResumePoint, decode_entry, live_stream

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


@dataclass(frozen=True, slots=True)
class Reset:
    """The resume point is no longer retained: the client's view has a gap and must reload."""

    reason: str


@dataclass(eq=False, slots=True)
class _Subscriber:
    # Each item is one broker entry, decoded once by the reader for all its subscribers; None
    # tells the consumer it was dropped.
    queue: asyncio.Queue[list[LiveEvent] | None] = field(default_factory=asyncio.Queue)
    queued_samples: int = 0
    overflowed: bool = False

    def offer(self, events: list[LiveEvent]) -> bool:
        """Queues ``events``; False (and nothing kept) when that would pass the bound."""
        if self.queued_samples + len(events) > SUBSCRIBER_QUEUE_SAMPLES:
            self.overflowed = True
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queued_samples = 0
            self.queue.put_nowait(None)
            return False
        self.queued_samples += len(events)
        self.queue.put_nowait(events)
        return True

    async def take(self) -> list[LiveEvent] | None:
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
                events = decode_entry(*entry)
                for subscriber in list(self.subscribers):
                    if not subscriber.offer(events):
                        self.subscribers.discard(subscriber)


class LiveHub:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self._readers: dict[int, _VehicleReader] = {}

    async def close(self) -> None:
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

    async def events(
        self,
        vehicle_id: int,
        resume: ResumePoint | None,
        *,
        invalid_resume: bool = False,
        idle_s: float | None = None,
    ) -> AsyncIterator[Attached | LiveEvent | Reset | None]:
        """Live events of one vehicle, first replaying what followed ``resume``.

        Starts with ``Attached`` (tell the client it is connected then, not before, or what is
        published in between is missed). With ``idle_s``, a None whenever that long passes
        without an event (for heartbeats). Ends with ``SubscriberOverflowError`` when the
        consumer reads too slowly.
        """
        reader, subscriber = await self._attach(vehicle_id)
        # Entries up to here come from the replay, later ones from the queue: no gap, no repeat.
        attached_at = reader.position or "0-0"
        try:
            yield Attached()
            if invalid_resume:
                yield Reset("the Last-Event-ID is not one this server issued")
            elif resume is not None:
                async for item in self._replay(reader.stream, resume, attached_at):
                    yield item
            while True:
                try:
                    # A timeout on the queue itself: a task per event to race a timer cost more
                    # than the rest of the fan-out to a viewer.
                    async with asyncio.timeout(idle_s):
                        batch = await subscriber.take()
                except TimeoutError:
                    yield None
                    continue
                if batch is None:
                    raise SubscriberOverflowError
                for event in batch:
                    yield event
        finally:
            self._detach(vehicle_id, reader, subscriber)

    async def _replay(
        self, stream: str, resume: ResumePoint, until: str
    ) -> AsyncIterator[LiveEvent | Reset]:
        first = await self.broker.first_id(stream)
        resume_key = parse_stream_id(resume.entry_id)
        until_key = parse_stream_id(until)
        if resume_key > until_key:
            yield Reset("the Last-Event-ID is ahead of this stream")
            return
        if first is None or parse_stream_id(first) > resume_key:
            if resume_key < until_key:
                yield Reset("samples after the Last-Event-ID are no longer retained")
            return
        start = resume.entry_id
        while True:
            page = await self.broker.xrange(stream, start, count=_REPLAY_PAGE)
            for entry_id, fields in page:
                key = parse_stream_id(entry_id)
                if key > until_key:
                    return
                for event in decode_entry(entry_id, fields):
                    if key == resume_key and int(event.id.rsplit(".", 1)[1]) <= resume.index:
                        continue
                    yield event
            if len(page) < _REPLAY_PAGE:
                return
            last = parse_stream_id(page[-1][0])
            start = f"{last[0]}-{last[1] + 1}"
