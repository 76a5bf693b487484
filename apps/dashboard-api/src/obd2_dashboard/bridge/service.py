"""What the device protocol does with each frame the Bridge Agent sends: batches go to the
ingest committer (the same path as POST /ingest) and are answered with an ack or an error
frame; reports (status, DTCs, command results) are kept; queued commands are handed out.

The socket itself (reading frames, one at a time, and sending the answers) is the endpoint's.
Each error frame's status comes from the type of what went wrong, never from its text.
"""

import json
import logging
from dataclasses import dataclass
from functools import partial

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from obd2_dashboard.devices.service import device_is_active, device_report_key
from obd2_dashboard.dtcs import service as dtcs
from obd2_dashboard.kit.broker import Broker
from obd2_dashboard.kit.db import after_commit, session_scope, utcnow
from obd2_dashboard.kit.websocket import FrameError, FrameTooLargeError
from obd2_dashboard.mqtt.events import publish_dtc_event
from obd2_dashboard.presence.state import Thresholds
from obd2_dashboard.telemetry import service as telemetry
from obd2_dashboard.telemetry.committer import (
    BUSY_DETAIL,
    DeviceRejectedError,
    IngestBusyError,
    IngestCommitter,
)
from obd2_protocol import (
    MAX_REPORT_FRAME_CHARS,
    BridgeAck,
    BridgeBatch,
    BridgeClearDtcs,
    BridgeCommandResult,
    BridgeDtcReport,
    BridgeError,
    BridgeStatus,
)

log = logging.getLogger("obd2_dashboard.bridge")

Report = BridgeStatus | BridgeDtcReport | BridgeCommandResult
REPORTS: dict[str, type[Report]] = {
    "status": BridgeStatus,
    "dtcs": BridgeDtcReport,
    "command_result": BridgeCommandResult,
}

# The status of the error frame for a frame the socket could not read; others are 422.
_FRAME_ERROR_STATUS: dict[type[FrameError], int] = {FrameTooLargeError: 413}


class DeviceRevokedError(Exception):
    """The device may no longer send (its token was revoked): its socket is to be closed."""


@dataclass(frozen=True, slots=True)
class BridgeDevice:
    """One connected device and where its frames go."""

    device_id: int
    vehicle_id: int
    token: str
    sessionmaker: async_sessionmaker[AsyncSession]
    broker: Broker
    committer: IngestCommitter
    thresholds: Thresholds


def unreadable_frame(exc: FrameError) -> BridgeError:
    """The error frame for a frame that is not JSON text, or is over the size limit."""
    status = next(
        (code for kind, code in _FRAME_ERROR_STATUS.items() if isinstance(exc, kind)), 422
    )
    return BridgeError(id=None, status=status, detail=str(exc))


def _first_error(what: str, exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"invalid {what}: {where}: {first['msg']}"


def _encoded_size(value: object) -> int:
    try:
        return len(json.dumps(value))
    except (ValueError, RecursionError):
        return 0


def _oversized_report(kind: str, frame: dict[str, object], size: int) -> str:
    """The error for a report frame over the size limit, naming its largest field."""
    sizes = {key: _encoded_size(value) for key, value in frame.items() if key != "type"}
    largest = max(sizes, key=sizes.__getitem__, default=None)
    where = f"{largest}: " if largest is not None else ""
    return (
        f"invalid {kind}: {where}frame of {size} characters is over the limit of "
        f"{MAX_REPORT_FRAME_CHARS} for reports"
    )


async def store_report(
    device: BridgeDevice, kind: str, frame: dict[str, object], size: int
) -> BridgeError | None:
    """Keeps one report; an error frame, and nothing kept, for one over any wire limit."""
    if size > MAX_REPORT_FRAME_CHARS:
        return BridgeError(id=None, status=413, detail=_oversized_report(kind, frame, size))
    try:
        report = REPORTS[kind].model_validate(frame)
    except ValidationError as exc:
        return BridgeError(id=None, status=422, detail=_first_error(kind, exc))
    try:
        async with session_scope(device.sessionmaker) as session:
            if isinstance(report, BridgeStatus):
                await telemetry.record_agent_status(
                    session,
                    device.device_id,
                    utcnow(),
                    device.thresholds,
                    report.agent_version,
                    report.adapter_state,
                )
            elif isinstance(report, BridgeDtcReport):
                new = await dtcs.apply_report(session, device.vehicle_id, report)
                if new:
                    after_commit(session, partial(_announce_dtcs, device, new))
            else:
                await dtcs.record_result(session, device.device_id, report)
    except Exception as exc:
        # The agent sends its reports again; the socket and its batches go on.
        log.warning("device report not stored: %s", type(exc).__name__)
        return BridgeError(id=None, status=503, detail=f"{kind} not stored; storage unavailable")
    try:
        # The newest report of each kind, where every API process can read it.
        await device.broker.set(device_report_key(kind, device.device_id), report.model_dump_json())
    except Exception as exc:
        log.warning("device report not kept: %s", type(exc).__name__)
    return None


async def _announce_dtcs(device: BridgeDevice, new: list[tuple[str, str]]) -> None:
    for code, kind in new:
        await publish_dtc_event(
            device.broker,
            device.vehicle_id,
            code,
            kind,
            description=dtcs.code_description(code),
        )


async def due_commands(device: BridgeDevice) -> list[BridgeClearDtcs]:
    """The frames of the commands queued for the device; DeviceRevokedError once it may no
    longer send (a token revoked by any API process)."""
    async with session_scope(device.sessionmaker) as session:
        if not await device_is_active(session, device.device_id):
            raise DeviceRevokedError
        due = await dtcs.due_commands(session, device.device_id)
    return [BridgeClearDtcs(id=c.id) for c in due if c.kind == dtcs.CLEAR_DTCS]


async def store_batch(device: BridgeDevice, frame: dict[str, object]) -> BridgeAck | BridgeError:
    """Stores one batch: its ack, or the error frame of why nothing of it was stored;
    DeviceRevokedError when the device lost its right to send."""
    raw_id = frame.get("id")
    batch_id = raw_id if isinstance(raw_id, int) and raw_id >= 0 else None
    try:
        batch = BridgeBatch.model_validate(frame)
    except ValidationError as exc:
        return BridgeError(id=batch_id, status=422, detail=_first_error("batch", exc))
    try:
        # The token is checked with each batch: a revoked device is cut off at its next.
        result = await device.committer.store(device.token, batch.samples, transport="ws")
    except DeviceRejectedError:
        raise DeviceRevokedError from None
    except telemetry.InvalidBatchError as exc:
        return BridgeError(id=batch.id, status=422, detail=str(exc))
    except IngestBusyError:
        return BridgeError(id=batch.id, status=503, detail=BUSY_DETAIL)
    except Exception as exc:
        # Nothing of the batch was stored: the agent keeps it spooled and retries.
        log.warning("bridge batch failed: %s", type(exc).__name__)
        return BridgeError(id=batch.id, status=503, detail="storage unavailable; retry")
    return BridgeAck(id=batch.id, accepted=result.accepted, duplicates=result.duplicates)
