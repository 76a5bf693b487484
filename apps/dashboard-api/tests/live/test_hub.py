"""The live hub with the embedded broker: slow subscribers and gaps in the stream."""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from obd2_dashboard.kit.broker import Breaker, EmbeddedBroker
from obd2_dashboard.live import hub as live_hub
from obd2_dashboard.live.endpoints import OVERFLOW_REASON, _pump
from obd2_dashboard.live.events import (
    LiveEvent,
    LiveSample,
    Reset,
    ResumePoint,
    live_stream,
    parse_event_id,
)
from obd2_dashboard.live.hub import Attached, LiveHub, SubscriberOverflowError
from obd2_dashboard.live.publisher import LivePublisher

VEHICLE = 7
# A small bound keeps these tests quick; the hub reads it at every offer.
QUEUE_SAMPLES = 256


@pytest.fixture(autouse=True)
def _small_queues(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live_hub, "SUBSCRIBER_QUEUE_SAMPLES", QUEUE_SAMPLES)


def _sample(seq: int) -> LiveSample:
    return LiveSample(seq=seq, ts=1_700_000_000_000 + seq, pid="RPM", value=float(seq))


async def _settled(hub: LiveHub, broker: EmbeddedBroker) -> None:
    """Until the vehicle's reader has handed out every entry on the stream."""
    last = await broker.last_id(live_stream(VEHICLE))
    for _ in range(500):
        reader = hub._readers.get(VEHICLE)
        if reader is not None and reader.position == last:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the reader never caught up with the stream")


async def _next(
    events: AsyncIterator[Attached | LiveEvent | Reset | None],
) -> LiveEvent | Reset | None:
    """The next item after the subscription's ``Attached``."""
    while True:
        item = await asyncio.wait_for(anext(events), 5)
        if not isinstance(item, Attached):
            return item


async def test_a_subscriber_too_far_behind_loses_its_backlog_whole_and_resumes_without_hole() -> (
    None
):
    broker = EmbeddedBroker()
    hub = LiveHub(broker)
    publisher = LivePublisher(broker)
    events = hub.events(VEHICLE, None)
    first = asyncio.ensure_future(_next(events))
    await asyncio.sleep(0.05)  # attached
    await publisher.publish(VEHICLE, [_sample(0)])
    got = await first
    assert isinstance(got, LiveEvent)
    assert got.sample.seq == 0
    # The subscriber stops reading while more entries than its queue holds arrive.
    total = QUEUE_SAMPLES + 10
    for seq in range(1, total + 1):
        await publisher.publish(VEHICLE, [_sample(seq)])
    await _settled(hub, broker)
    # Its very next read says so: no stale entry after a hole comes first.
    with pytest.raises(SubscriberOverflowError):
        await _next(events)
    resume = parse_event_id(got.id)
    assert resume is not None
    resumed = hub.events(VEHICLE, resume)
    seqs = []
    for _ in range(total):
        item = await _next(resumed)
        assert isinstance(item, LiveEvent)
        seqs.append(item.sample.seq)
    assert seqs == list(range(1, total + 1))
    await resumed.aclose()
    await hub.close()


async def test_samples_never_streamed_leave_a_gap_marker_that_viewers_get_as_reset() -> None:
    broker = EmbeddedBroker()
    hub = LiveHub(broker)
    publisher = LivePublisher(broker)
    publisher.breaker = Breaker(open_s=0)
    events = hub.events(VEHICLE, None)
    first = asyncio.ensure_future(_next(events))
    await asyncio.sleep(0.05)
    assert await publisher.publish(VEHICLE, [_sample(1)])
    before_gap = await first
    assert isinstance(before_gap, LiveEvent)

    real_xadd = broker.xadd

    async def broken_xadd(*args: Any, **kwargs: Any) -> str:
        raise ConnectionError("broker down")

    broker.xadd = broken_xadd  # type: ignore[method-assign]
    assert not await publisher.publish(VEHICLE, [_sample(2)])
    broker.xadd = real_xadd  # type: ignore[method-assign]
    assert await publisher.publish(VEHICLE, [_sample(3)])

    reset = await _next(events)
    assert isinstance(reset, Reset)
    assert "interrupted" in reset.reason
    after = await _next(events)
    assert isinstance(after, LiveEvent)
    assert after.sample.seq == 3
    await events.aclose()

    # Resuming from before the gap replays the reset; from the reset itself, only what follows.
    resume = parse_event_id(before_gap.id)
    assert resume is not None
    replayed = hub.events(VEHICLE, resume)
    assert isinstance(await _next(replayed), Reset)
    await replayed.aclose()
    assert reset.id is not None
    from_reset = hub.events(VEHICLE, parse_event_id(reset.id))
    item = await _next(from_reset)
    assert isinstance(item, LiveEvent)
    assert item.sample.seq == 3
    await from_reset.aclose()
    await hub.close()


class _StalledSocket:
    """Stands in for a browser's WebSocket that stops reading: sends wait until released."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.flowing = asyncio.Event()
        self.stalled = asyncio.Event()

    async def send_text(self, text: str) -> None:
        self.stalled.set()
        await self.flowing.wait()
        self.sent.append(json.loads(text))


async def test_websocket_subscriber_that_overflows_gets_a_reset_then_new_samples() -> None:
    broker = EmbeddedBroker()
    hub = LiveHub(broker)
    publisher = LivePublisher(broker)
    socket = _StalledSocket()
    socket.flowing.set()
    pump = asyncio.create_task(_pump(socket, hub, VEHICLE, asyncio.Lock()))  # type: ignore[arg-type]
    for _ in range(200):
        if socket.sent:
            break
        await asyncio.sleep(0.01)
    assert socket.sent == [{"type": "subscribed", "vehicle_id": VEHICLE}]
    socket.flowing.clear()
    socket.stalled.clear()
    # One entry is taken (its send waits), then more than a queue's worth pile up.
    await publisher.publish(VEHICLE, [_sample(0)])
    await asyncio.wait_for(socket.stalled.wait(), 5)
    for seq in range(1, QUEUE_SAMPLES + 10):
        await publisher.publish(VEHICLE, [_sample(seq)])
    await _settled(hub, broker)
    socket.flowing.set()
    reset = {"type": "reset", "vehicle_id": VEHICLE, "reason": OVERFLOW_REASON}
    for _ in range(200):
        if reset in socket.sent:
            break
        await asyncio.sleep(0.01)
    assert [m["seq"] for m in socket.sent if m["type"] == "sample"] == [0]
    after_reset = socket.sent[socket.sent.index(reset) + 1 :]
    # A fresh subscription follows the reset at once.
    for _ in range(200):
        if after_reset:
            break
        await asyncio.sleep(0.01)
        after_reset = socket.sent[socket.sent.index(reset) + 1 :]
    assert after_reset[0] == {"type": "subscribed", "vehicle_id": VEHICLE}
    # The subscription goes on: a new sample reaches the socket.
    await asyncio.sleep(0.05)
    await publisher.publish(VEHICLE, [_sample(10_000)])
    for _ in range(200):
        if socket.sent[-1].get("seq") == 10_000:
            break
        await asyncio.sleep(0.01)
    assert socket.sent[-1]["seq"] == 10_000
    assert not pump.done()
    pump.cancel()
    await asyncio.gather(pump, return_exceptions=True)
    await hub.close()


def test_resume_point_of_a_reset_id_parses() -> None:
    assert parse_event_id("1700000000000-3.0") == ResumePoint("1700000000000-3", 0)
