import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from obd2_protocol.pids import is_known_pid

MAX_BATCH_SAMPLES = 5000
# 2001-09-09: anything older is a clock that was never set, not spooled data.
MIN_TS_MS = 1_000_000_000_000
MAX_SEQ = 2**63 - 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Sample(_Strict):
    seq: Annotated[int, Field(ge=0, le=MAX_SEQ, strict=True)]
    ts: Annotated[int, Field(ge=MIN_TS_MS, le=2**53, strict=True, description="epoch milliseconds")]
    pid: Annotated[str, Field(min_length=1, max_length=64, examples=["RPM"])]
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
