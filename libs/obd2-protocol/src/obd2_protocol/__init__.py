"""Wire schema shared by the obd2-dashboard server and its Bridge Agent.

Both sides validate with the same models, so a batch the agent builds is a batch the server accepts.
"""

from obd2_protocol.fastwire import FastSample, decode_ingest_batch
from obd2_protocol.pids import PID_SCHEMA, PIDS, PidInfo, is_known_pid
from obd2_protocol.wire import (
    MAX_BATCH_SAMPLES,
    AdapterState,
    AgentFrame,
    BridgeAck,
    BridgeBatch,
    BridgeClearDtcs,
    BridgeCommandResult,
    BridgeDtcReport,
    BridgeError,
    BridgeStatus,
    DtcEntry,
    IngestBatch,
    IngestResult,
    Sample,
    SampleFields,
    ServerFrame,
)

__all__ = [
    "MAX_BATCH_SAMPLES",
    "PIDS",
    "PID_SCHEMA",
    "AdapterState",
    "AgentFrame",
    "BridgeAck",
    "BridgeBatch",
    "BridgeClearDtcs",
    "BridgeCommandResult",
    "BridgeDtcReport",
    "BridgeError",
    "BridgeStatus",
    "DtcEntry",
    "FastSample",
    "IngestBatch",
    "IngestResult",
    "PidInfo",
    "Sample",
    "SampleFields",
    "ServerFrame",
    "decode_ingest_batch",
    "is_known_pid",
]
