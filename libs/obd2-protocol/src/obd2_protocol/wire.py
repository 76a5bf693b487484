"""The wire: every limit a device's input must fit is defined here, once.

The server refuses what does not fit at the edge (HTTP ingest, the bridge socket, Torque), before
anything is stored, so no table, rollup or report downstream ever meets a value it cannot hold.
"""

import math
from collections.abc import Sequence
from typing import Annotated, Any, Literal, Protocol

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from obd2_protocol.pids import PID_SCHEMA, PIDS, is_known_pid

MAX_BATCH_SAMPLES = 5000
# 2001-09-09: anything older is a clock that was never set, not spooled data.
MIN_TS_MS = 1_000_000_000_000
# The largest integer every JSON reader holds exactly (a float's 53 bits): the web UI and the
# OpenAPI document read seq as a float. An agent's seq (epoch ms * 1000) stays below it until 2255.
MAX_SEQ = 2**53 - 1
MAX_TS_MS = 2**53

# The largest magnitude of a sample value. Values reach float8 columns (PostgreSQL; SQLite's REAL
# is the same 8 bytes) in raw rows, the rollups and trips, and PostgreSQL's avg(float8) keeps a
# running sum of squares that raises "value out of range: overflow" past ~1.8e308: one sample of
# 1e308 made every recomputation of its minute fail. At 1e12, a bucket's sum of squared
# deviations is at most N * (2e12)**2 = N * 4e24, finite for any N a bigint count can hold
# (2**63 * 4e24 < 4e43), and so are the 15-minute tier's sums of avg * count and the trips'
# integrals (km/h * s). It is still a thousand times anything OBD-II or Torque reports: the
# largest python-OBD decodes are the odometer (< 4.3e8 km) and pressures (< 6.6e5 kPa).
MAX_ABS_VALUE = 1e12

# A sample value: a JSON number (a string or a boolean is refused, not converted), finite and
# within MAX_ABS_VALUE. The fast decoder (fastwire) applies the same bounds.
SampleValue = Annotated[
    float, Field(strict=True, allow_inf_nan=False, ge=-MAX_ABS_VALUE, le=MAX_ABS_VALUE)
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Sample(_Strict):
    seq: Annotated[int, Field(ge=0, le=MAX_SEQ, strict=True)]
    ts: Annotated[
        int, Field(ge=MIN_TS_MS, le=MAX_TS_MS, strict=True, description="epoch milliseconds")
    ]
    pid: Annotated[
        str, Field(min_length=1, max_length=64, examples=["RPM"], json_schema_extra=PID_SCHEMA)
    ]
    value: SampleValue

    @field_validator("pid")
    @classmethod
    def _known_pid(cls, pid: str) -> str:
        if not is_known_pid(pid):
            raise ValueError(f"unknown PID {pid!r}")
        return pid


def is_storable_value(value: float) -> bool:
    """Whether a number fits ``SampleValue`` (for producers that skip rather than refuse)."""
    return math.isfinite(value) and -MAX_ABS_VALUE <= value <= MAX_ABS_VALUE


class SampleFields(Protocol):
    """A sample as the server handles it: a ``Sample`` or what the fast decoder makes."""

    @property
    def seq(self) -> int: ...
    @property
    def ts(self) -> int: ...
    @property
    def pid(self) -> str: ...
    @property
    def value(self) -> float: ...


def conflicting_seq(samples: Sequence[SampleFields]) -> str | None:
    """Why a batch is refused when one seq comes twice with other fields; None when it is not.

    A seq names one reading for good: two different readings under one seq would have one
    silently dropped. An exact repeat is the same reading and is stored once.
    """
    if len({s.seq for s in samples}) == len(samples):
        return None
    first: dict[int, int] = {}
    for index, sample in enumerate(samples):
        earlier = first.setdefault(sample.seq, index)
        other = samples[earlier]
        if (other.ts, other.pid, other.value) != (sample.ts, sample.pid, sample.value):
            return (
                f"samples[{index}] repeats the seq {sample.seq} of samples[{earlier}] "
                "with a different ts, pid or value"
            )
    return None


class IngestBatch(_Strict):
    samples: Annotated[list[Sample], Field(min_length=1, max_length=MAX_BATCH_SAMPLES)]

    @field_validator("samples")
    @classmethod
    def _one_reading_per_seq(cls, samples: list[Sample]) -> list[Sample]:
        conflict = conflicting_seq(samples)
        if conflict is not None:
            raise ValueError(conflict)
        return samples


class IngestResult(_Strict):
    accepted: int
    duplicates: int


class BridgeBatch(IngestBatch):
    """One frame the agent sends on the bridge WebSocket; acknowledged by ``id``."""

    type: Literal["batch"] = "batch"
    id: Annotated[int, Field(ge=0, strict=True)]


class BridgeAck(_Strict):
    type: Literal["ack"] = "ack"
    id: int
    accepted: int
    duplicates: int


class BridgeError(_Strict):
    type: Literal["error"] = "error"
    id: int | None
    status: int
    detail: str


# Limits of the agent's reports, each fitting where the server keeps it: devices.agent_version
# is VARCHAR(64), device_commands.detail VARCHAR(500), vehicle_dtcs.code VARCHAR(8); the status
# is kept whole in the broker and served back by the devices endpoint, so its free text is
# bounded too. A report over any of them is refused whole, naming the field.
MAX_AGENT_VERSION = 64
MAX_DETAIL = 500
MAX_SHORT_TEXT = 64
MAX_VIN = 32
MAX_DTC_DESCRIPTION = 200
# Codes per list of a DTC report: a car reports a handful; a list of thousands is not a car.
MAX_DTCS = 128
# Values of a freeze frame: at most one per known PID.
MAX_FREEZE_FRAME_VALUES = len(PIDS)
# A whole report frame (status, dtcs, command_result), in characters: a DTC report with every
# list and description at its limit is about 90 000; nothing legitimate comes near it. Batches
# have their own limit (the ingest body limit).
MAX_REPORT_FRAME_CHARS = 128 * 1024


def _storable_text(text: str) -> str:
    # JSON may carry "\u0000" and unpaired surrogates: neither can be stored (PostgreSQL text
    # refuses NUL, UTF-8 has no surrogates).
    if "\x00" in text:
        raise ValueError("text must not contain NUL characters")
    try:
        text.encode()
    except UnicodeEncodeError:
        raise ValueError("text is not valid Unicode (unpaired surrogate)") from None
    return text


_STORABLE = AfterValidator(_storable_text)
AgentVersion = Annotated[str, Field(max_length=MAX_AGENT_VERSION), _STORABLE]
DetailText = Annotated[str, Field(max_length=MAX_DETAIL), _STORABLE]
ShortText = Annotated[str, Field(max_length=MAX_SHORT_TEXT), _STORABLE]
VinText = Annotated[str, Field(max_length=MAX_VIN), _STORABLE]
DtcDescription = Annotated[str, Field(max_length=MAX_DTC_DESCRIPTION), _STORABLE]


def _known_pid_key(pid: str) -> str:
    if not is_known_pid(pid):
        raise ValueError(f"unknown PID {pid!r}")
    return pid


def _at_most_values(value: Any) -> Any:
    # Counted before any entry is validated: 20 000 unknown keys would otherwise cost 20 000
    # errors' worth of work before the size was even looked at.
    if isinstance(value, dict) and len(value) > MAX_FREEZE_FRAME_VALUES:
        raise ValueError(
            f"a freeze frame has at most {MAX_FREEZE_FRAME_VALUES} values, not {len(value)}"
        )
    return value


Count = Annotated[int, Field(ge=0, le=MAX_SEQ, strict=True)]
EpochMs = Annotated[int, Field(ge=MIN_TS_MS, le=MAX_TS_MS, strict=True)]
DtcCode = Annotated[str, Field(pattern=r"^[PCBU][0-9A-F]{4}$", examples=["P0143"])]


class DtcEntry(_Strict):
    code: DtcCode
    description: DtcDescription = ""


DtcList = Annotated[list[DtcEntry], Field(max_length=MAX_DTCS)]


class BridgeDtcReport(_Strict):
    """The trouble codes the agent read from the car; sent when they change and after connecting."""

    type: Literal["dtcs"] = "dtcs"
    ts: EpochMs
    stored: DtcList
    pending: DtcList
    permanent: DtcList
    freeze_dtc: DtcCode | None = None
    freeze_frame: Annotated[
        dict[Annotated[str, AfterValidator(_known_pid_key)], SampleValue],
        BeforeValidator(_at_most_values),
    ] = Field(default_factory=dict)


AdapterState = Literal[
    "connecting",
    "no_adapter",
    "no_ecu",
    "unsupported_protocol",
    "timeout",
    "connected",
    "engine_off",
    "low_voltage",
]


class BridgeStatus(_Strict):
    """What the agent reports about itself, every few seconds; the server may show or ignore it."""

    type: Literal["status"] = "status"
    ts: EpochMs
    agent_version: AgentVersion
    adapter_state: AdapterState
    adapter_detail: DetailText = ""
    protocol: ShortText | None = None
    vin: VinText | None = None
    battery_voltage: SampleValue | None = None
    spool_backlog: Count
    spool_dropped: Count = 0
    last_upload_ts: Annotated[int, Field(ge=0, le=MAX_TS_MS, strict=True)] | None = None
    sample_rate: Annotated[float, Field(ge=0, le=MAX_ABS_VALUE, allow_inf_nan=False, strict=True)]


class BridgeClearDtcs(_Strict):
    """Server → agent: clear the trouble codes (mode 04); only sent after the user confirmed it."""

    type: Literal["clear_dtcs"] = "clear_dtcs"
    id: Annotated[int, Field(ge=0, strict=True)]


class BridgeCommandResult(_Strict):
    """Agent → server: the outcome of a command frame, matched by ``id``."""

    type: Literal["command_result"] = "command_result"
    id: Annotated[int, Field(ge=0, le=MAX_SEQ, strict=True)]
    command: Literal["clear_dtcs"]
    ok: Annotated[bool, Field(strict=True)]
    detail: DetailText = ""


ServerFrame = Annotated[BridgeAck | BridgeError | BridgeClearDtcs, Field(discriminator="type")]
AgentFrame = Annotated[
    BridgeBatch | BridgeStatus | BridgeDtcReport | BridgeCommandResult,
    Field(discriminator="type"),
]
