"""What travels on a vehicle's live stream: one broker entry per stored batch, and a gap marker
where batches were stored but could not be put on the stream."""

import re
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from obd2_dashboard.kit.broker import MAX_STREAM_ID_PART, format_stream_id
from obd2_protocol import SampleFields

# A viewer resumes without a gap after a break this long (or this many batches), no longer:
# Redis then holds about (ingest rate x age) of samples, whatever the number of vehicles.
LIVE_STREAM_MAXLEN = 2_000
LIVE_STREAM_MAX_AGE_MS = 120_000
GAP_FIELD = "gap"
GAP_REASON = "the live stream was interrupted; samples stored meanwhile are in the history"


def live_stream(vehicle_id: int) -> str:
    return f"live:vehicle:{vehicle_id}"


@dataclass(frozen=True, slots=True)
class LiveSample:
    seq: int
    ts: int
    pid: str
    value: float

    def as_json(self) -> str:
        return orjson.dumps(
            {"seq": self.seq, "ts": self.ts, "pid": self.pid, "value": self.value}
        ).decode()


@dataclass(frozen=True, slots=True)
class Reset:
    """The client's view has a gap (resume point gone, or samples never streamed): reload.

    One made from a gap marker carries the marker's event id, so a client resuming from it is
    not told twice."""

    reason: str
    id: str | None = None


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """One sample with the id a client sends back to resume after it."""

    id: str
    sample: LiveSample


def encode_batch(samples: Sequence[SampleFields]) -> dict[str, str]:
    # orjson: on the ingest path this encoding cost more than the Redis round trip.
    rows = [(s.seq, s.ts, s.pid, s.value) for s in samples]
    return {"s": orjson.dumps(rows).decode()}


def gap_entry() -> dict[str, str]:
    return {GAP_FIELD: "1"}


def is_gap_entry(fields: dict[str, str]) -> bool:
    return GAP_FIELD in fields


def decode_entry(entry_id: str, fields: dict[str, str]) -> list[LiveEvent]:
    """The samples of an entry (none for a gap marker)."""
    rows = orjson.loads(fields.get("s", "[]"))
    return [
        LiveEvent(f"{entry_id}.{i}", LiveSample(int(r[0]), int(r[1]), str(r[2]), float(r[3])))
        for i, r in enumerate(rows)
    ]


@dataclass(frozen=True, slots=True)
class ResumePoint:
    entry_id: str
    index: int


# ASCII digits only: str.isdigit() also takes "²", which int() then refuses.
_EVENT_ID = re.compile(r"(\d{1,20})-(\d{1,20})\.(\d{1,9})", re.ASCII)


def parse_event_id(value: str) -> ResumePoint | None:
    """``"<stream id>.<index>"`` → where to resume; None for anything malformed.

    The stream id comes back in canonical form and within Redis' 64-bit parts, so it can be
    handed to the broker as it is.
    """
    match = _EVENT_ID.fullmatch(value.strip())
    if match is None:
        return None
    ms, seq, index = (int(part) for part in match.groups())
    if ms > MAX_STREAM_ID_PART or seq > MAX_STREAM_ID_PART:
        return None
    return ResumePoint(format_stream_id((ms, seq)), index)
