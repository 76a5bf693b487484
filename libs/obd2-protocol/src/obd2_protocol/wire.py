import math
from typing import Annotated, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from obd2_protocol.pids import PID_SCHEMA, is_known_pid

MAX_BATCH_SAMPLES = 5000
# 2001-09-09: anything older is a clock that was never set, not spooled data.
MIN_TS_MS = 1_000_000_000_000
# The largest integer every JSON reader holds exactly (a float's 53 bits): the web UI and the
# OpenAPI document read seq as a float. An agent's seq (epoch ms * 1000) stays below it until 2255.
MAX_SEQ = 2**53 - 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Sample(_Strict):
    seq: Annotated[int, Field(ge=0, le=MAX_SEQ, strict=True)]
    ts: Annotated[int, Field(ge=MIN_TS_MS, le=2**53, strict=True, description="epoch milliseconds")]
    pid: Annotated[
        str, Field(min_length=1, max_length=64, examples=["RPM"], json_schema_extra=PID_SCHEMA)
    ]
    value: float

    @field_validator("pid")
    @classmethod
    def _known_pid(cls, pid: str) -> str:
        if not is_known_pid(pid):
            raise ValueError(f"unknown PID {pid!r}")
        return pid

    @field_validator("value")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("value must be a finite number")
        return value


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


class IngestBatch(_Strict):
    samples: Annotated[list[Sample], Field(min_length=1, max_length=MAX_BATCH_SAMPLES)]


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


class DtcEntry(_Strict):
    code: Annotated[str, Field(pattern=r"^[PCBU][0-9A-F]{4}$", examples=["P0143"])]
    description: str = ""


class BridgeDtcReport(_Strict):
    """The trouble codes the agent read from the car; sent when they change and after connecting."""

    type: Literal["dtcs"] = "dtcs"
    ts: Annotated[int, Field(ge=MIN_TS_MS, le=2**53, strict=True)]
    stored: list[DtcEntry]
    pending: list[DtcEntry]
    permanent: list[DtcEntry]
    freeze_dtc: str | None = None
    freeze_frame: dict[str, float] = Field(default_factory=dict)


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
    ts: Annotated[int, Field(ge=MIN_TS_MS, le=2**53, strict=True)]
    agent_version: str
    adapter_state: AdapterState
    adapter_detail: str = ""
    protocol: str | None = None
    vin: str | None = None
    battery_voltage: float | None = None
    spool_backlog: Annotated[int, Field(ge=0)]
    spool_dropped: Annotated[int, Field(ge=0)] = 0
    last_upload_ts: int | None = None
    sample_rate: Annotated[float, Field(ge=0)]


class BridgeClearDtcs(_Strict):
    """Server → agent: clear the trouble codes (mode 04); only sent after the user confirmed it."""

    type: Literal["clear_dtcs"] = "clear_dtcs"
    id: Annotated[int, Field(ge=0, strict=True)]


class BridgeCommandResult(_Strict):
    """Agent → server: the outcome of a command frame, matched by ``id``."""

    type: Literal["command_result"] = "command_result"
    id: int
    command: Literal["clear_dtcs"]
    ok: bool
    detail: str = ""


ServerFrame = Annotated[BridgeAck | BridgeError | BridgeClearDtcs, Field(discriminator="type")]
AgentFrame = Annotated[
    BridgeBatch | BridgeStatus | BridgeDtcReport | BridgeCommandResult,
    Field(discriminator="type"),
]
