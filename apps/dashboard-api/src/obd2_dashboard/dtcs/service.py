import json
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from obd2_dashboard.alerts.firing import raise_dtc_alert
from obd2_dashboard.auth.service import user_email
from obd2_dashboard.dtcs.codes import describe
from obd2_dashboard.dtcs.repository import CommandRepository, DtcRepository
from obd2_dashboard.dtcs.schemas import DtcRead
from obd2_dashboard.kit.db import utcnow
from obd2_dashboard.models import DeviceCommand, User, VehicleDtc
from obd2_dashboard.vehicles.service import get_owned_vehicle, get_vehicle
from obd2_protocol import BridgeCommandResult, BridgeDtcReport

CLEAR_DTCS = "clear_dtcs"
RESEND_AFTER = timedelta(seconds=60)


class NoAgentError(Exception):
    pass


def code_description(code: str) -> str:
    """What a DTC means: its stored text, or the system and kind of code it is."""
    return describe(code).description


async def apply_report(
    session: AsyncSession, vehicle_id: int, report: BridgeDtcReport, *, alerts: bool = True
) -> list[tuple[str, str]]:
    """Folds an agent's full DTC lists into the history; returns the (code, kind) that are new.

    A new code fires the vehicle's DTC alert rules in the same transaction, unless ``alerts``
    is false (a report of the past, as the demo's history replays: nobody is to be told now).
    """
    repo = DtcRepository(session)
    reported = {
        (entry.code.upper(), kind)
        for kind, entries in (
            ("stored", report.stored),
            ("pending", report.pending),
            ("permanent", report.permanent),
        )
        for entry in entries
    }
    freeze = (
        json.dumps({"dtc": report.freeze_dtc, "values": report.freeze_frame})
        if report.freeze_frame
        else None
    )
    new: list[tuple[str, str]] = []
    active = {(d.code, d.kind): d for d in await repo.active(vehicle_id)}
    for key, dtc in active.items():
        if key in reported:
            dtc.last_seen = max(dtc.last_seen, report.ts)
            if freeze and dtc.kind == "stored" and report.freeze_dtc == dtc.code:
                dtc.freeze_frame = freeze
        elif report.ts >= dtc.last_seen:
            dtc.cleared_at = report.ts
            dtc.clear_reason = "gone"
    for code, kind in sorted(reported - set(active)):
        await repo.add(
            VehicleDtc(
                vehicle_id=vehicle_id,
                code=code,
                kind=kind,
                first_seen=report.ts,
                last_seen=report.ts,
                freeze_frame=freeze if kind == "stored" and report.freeze_dtc == code else None,
            )
        )
        new.append((code, kind))
        if alerts:
            await raise_dtc_alert(session, vehicle_id, code, kind)
    await session.flush()
    return new


async def list_dtcs(session: AsyncSession, user: User, vehicle_id: int) -> list[DtcRead]:
    vehicle = await get_vehicle(session, user, vehicle_id)
    rows = await DtcRepository(session).history(vehicle.id, limit=500)
    result = []
    for row in rows:
        info = describe(row.code)
        cleared_by = None
        if row.cleared_by_user_id is not None:
            cleared_by = await user_email(session, row.cleared_by_user_id)
        result.append(
            DtcRead(
                id=row.id,
                code=row.code,
                kind=row.kind,
                description=info.description,
                manufacturer_specific=info.manufacturer_specific,
                first_seen=row.first_seen,
                last_seen=row.last_seen,
                cleared_at=row.cleared_at,
                clear_reason=row.clear_reason,
                cleared_by=cleared_by,
                freeze_frame=json.loads(row.freeze_frame) if row.freeze_frame else None,
            )
        )
    return result


async def request_clear(session: AsyncSession, user: User, vehicle_id: int) -> DeviceCommand:
    """Queues "clear DTCs" for the vehicle's most recently seen agent."""
    vehicle = await get_owned_vehicle(session, user, vehicle_id)
    commands = CommandRepository(session)
    devices = await commands.active_device_ids(vehicle.id)
    if not devices:
        raise NoAgentError("this vehicle has no active device to send the command to")
    return await commands.add(
        DeviceCommand(
            device_id=devices[0],
            vehicle_id=vehicle.id,
            kind=CLEAR_DTCS,
            requested_by_user_id=user.id,
        )
    )


async def list_commands(
    session: AsyncSession, user: User, vehicle_id: int
) -> Sequence[DeviceCommand]:
    vehicle = await get_vehicle(session, user, vehicle_id)
    return await CommandRepository(session).for_vehicle(vehicle.id, limit=50)


async def due_commands(session: AsyncSession, device_id: int) -> Sequence[DeviceCommand]:
    now = utcnow()
    commands = CommandRepository(session)
    due = await commands.due(device_id, now, RESEND_AFTER)
    if due:
        await commands.mark_sent([c.id for c in due], now)
    return due


async def record_result(session: AsyncSession, device_id: int, result: BridgeCommandResult) -> None:
    command = await CommandRepository(session).get(result.id)
    if command is None or command.device_id != device_id or command.completed_at is not None:
        return
    now = utcnow()
    command.completed_at = now
    command.ok = result.ok
    command.detail = result.detail[:500] or None
    if result.ok and command.kind == CLEAR_DTCS:
        now_ms = int(now.timestamp() * 1000)
        for dtc in await DtcRepository(session).active(command.vehicle_id):
            dtc.cleared_at = now_ms
            dtc.clear_reason = "cleared"
            dtc.cleared_by_user_id = command.requested_by_user_id
    await session.flush()


async def active_codes(session: AsyncSession, vehicle_id: int, kind: str = "stored") -> list[str]:
    """The vehicle's active trouble codes of one kind, sorted."""
    return sorted(
        {d.code for d in await DtcRepository(session).active(vehicle_id) if d.kind == kind}
    )


async def has_dtc_history(session: AsyncSession, vehicle_id: int) -> bool:
    return bool(await DtcRepository(session).history(vehicle_id, limit=1))
