"""A month of the demo car's history, stored through the ingest path as an agent's uploads are.

The drives come from the drive model the agent's simulated car also drives
(``obd2_protocol.demo_car``). Each is read the way the Bridge Agent polls a car (the fast PIDs
every 2 s, the slow ones every 10 s, the battery every 15 minutes while parked, a phone's GPS
fix every 2 s), encoded as an ingest body, decoded by the HTTP ingest's own decoder and stored
by the ingest committer as one device, "Demo history". Its batches are *backfill*: they go to no
live viewer, and the worker builds their rollups and trips without firing alerts or announcing
trips. The catalyst code's story goes through the DTC history as the agent's reports do, with
alerts off.

Seeding twice stores nothing twice: the device is the same one (its token renewed for the run
and revoked after it), a day's drives depend only on the seed and the date, and each sample's
seq is its time and PID, so a drive stored before comes back as duplicates. A drive that
overlaps samples another device stored (the live agent of an earlier run) is left out.
"""

import asyncio
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import tzinfo

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from obd2_dashboard.devices.service import reissue_device, retire_device
from obd2_dashboard.dtcs.codes import describe
from obd2_dashboard.dtcs.service import apply_report, has_dtc_history
from obd2_dashboard.kit.broker import Broker, make_broker
from obd2_dashboard.kit.db import session_scope
from obd2_dashboard.models import Vehicle
from obd2_dashboard.telemetry.committer import IngestCommitter
from obd2_dashboard.telemetry.service import Pipeline, others_running
from obd2_dashboard.telemetry.worker import DEFAULT_TRIP_JOIN_GAP_MS, RollupWorker, WorkerConfig
from obd2_protocol import MAX_BATCH_SAMPLES, BridgeDtcReport, DtcEntry, decode_ingest_batch
from obd2_protocol import demo_car as model
from obd2_protocol.wire import IngestBatch

log = logging.getLogger("obd2_dashboard.demo")

DEMO_SEED = 15
HISTORY_DAYS = 30
HISTORY_DEVICE = "Demo history"
DAY_MS = 86_400_000
# The code's story starts this long before the seeding: pending on a drive, then confirmed.
DTC_STORY_AGO_MS = 5 * DAY_MS

FAST_EVERY_MS = 2_000
SLOW_EVERY_MS = 10_000
PARKED_EVERY_MS = 15 * 60_000

# (PID, what it reads from the model, the resolution the car reports it in).
Reader = Callable[[model.Reading], float]
FAST: tuple[tuple[str, Reader, float], ...] = (
    ("SPEED", lambda r: r.speed_kmh, 1.0),
    ("RPM", lambda r: r.rpm, 0.25),
    ("THROTTLE_POS", lambda r: r.throttle_pct, 0.1),
    ("ENGINE_LOAD", lambda r: r.load_pct, 0.1),
    ("FUEL_RATE", lambda r: r.fuel_rate_lph, 0.05),
    ("GPS_LAT", lambda r: r.lat, 1e-7),
    ("GPS_LON", lambda r: r.lon, 1e-7),
)
SLOW: tuple[tuple[str, Reader, float], ...] = (
    ("COOLANT_TEMP", lambda r: r.coolant_c, 1.0),
    ("INTAKE_TEMP", lambda r: r.intake_c, 1.0),
    ("OIL_TEMP", lambda r: r.oil_c, 1.0),
    ("AMBIANT_AIR_TEMP", lambda r: r.ambient_c, 1.0),
    ("MAF", lambda r: r.maf_gps, 0.01),
    ("INTAKE_PRESSURE", lambda r: r.map_kpa, 1.0),
    ("FUEL_LEVEL", lambda r: r.fuel_pct, 0.1),
    ("CONTROL_MODULE_VOLTAGE", lambda r: r.battery_v - 0.15, 0.01),
    ("ELM_VOLTAGE", lambda r: r.battery_v, 0.01),
)
# A seq is the sample's time and its PID's place in this list: the same reading, the same seq.
SLOTS = {pid: slot for slot, pid in enumerate(p for p, _, _ in (*FAST, *SLOW))}
SEQ_SLOTS = 64

Row = tuple[int, str, float]  # (ts, PID, value)


@dataclass(frozen=True, slots=True)
class SeedReport:
    drives: int
    skipped_drives: int
    samples: int
    stored: int
    duplicates: int
    seconds: float


def _rounded(value: float, step: float) -> float:
    return round(round(value / step) * step, 7)


def drive_rows(drive: model.HistoryDrive) -> list[Row]:
    """What an agent polling the car would have read during the drive."""
    rows: list[Row] = []
    start = drive.readings[0].ts_ms
    last_fast = last_slow = None
    for reading in drive.readings:
        if not reading.engine_on:
            continue  # the ECU says nothing with the engine off (the fuel stop)
        since = reading.ts_ms - start
        fast = since // FAST_EVERY_MS
        if fast != last_fast:
            last_fast = fast
            rows += [
                (reading.ts_ms, pid, _rounded(read(reading), step)) for pid, read, step in FAST
            ]
        slow = since // SLOW_EVERY_MS
        if slow != last_slow:
            last_slow = slow
            rows += [
                (reading.ts_ms, pid, _rounded(read(reading), step)) for pid, read, step in SLOW
            ]
    # The ignition still on for a moment after the engine stopped: the ECU answers 0 rpm.
    off = drive.readings[-1]
    rows += [(off.ts_ms, "RPM", 0.0), (off.ts_ms, "SPEED", 0.0)]
    return rows


def parked_rows(after: model.HistoryDrive, until_ms: int) -> list[Row]:
    """The agent's battery heartbeat while the car stands after a drive, until ``until_ms``."""
    last = after.readings[-1]
    parked = model.condition_after(last, after.plan.destination)
    rows: list[Row] = []
    ts = last.ts_ms - last.ts_ms % PARKED_EVERY_MS + PARKED_EVERY_MS
    while ts < until_ms:
        battery = parked.parked_until(ts, parked.coolant_c).battery_v
        rows.append((ts, "ELM_VOLTAGE", _rounded(battery, 0.01)))
        ts += PARKED_EVERY_MS
    return rows


def encode_batches(rows: Sequence[Row]) -> Iterator[bytes]:
    """Ingest bodies of at most the wire's batch size, as an agent uploads them."""
    for start in range(0, len(rows), MAX_BATCH_SAMPLES):
        chunk = rows[start : start + MAX_BATCH_SAMPLES]
        yield orjson.dumps(
            {
                "samples": [
                    {"seq": ts * SEQ_SLOTS + SLOTS[pid], "ts": ts, "pid": pid, "value": value}
                    for ts, pid, value in chunk
                ]
            }
        )


class _Uploader:
    """Stores ingest bodies through the committer, several at once so that they share
    transactions, as concurrent uploads do."""

    # Rows in flight at once: well under the committer's queue limit.
    MAX_IN_FLIGHT_ROWS = 60_000

    def __init__(self, committer: IngestCommitter, token: str) -> None:
        self.committer = committer
        self.token = token
        self.stored = 0
        self.duplicates = 0
        self.samples = 0

    async def upload(self, bodies: Sequence[bytes]) -> None:
        """Decodes the bodies as HTTP ingest does and stores them."""
        decoded = [decode_ingest_batch(body) for body in bodies]
        batches = [d.samples if isinstance(d, IngestBatch) else d for d in decoded]
        results = await asyncio.gather(
            *(
                self.committer.store(self.token, samples, transport="demo", backfill=True)
                for samples in batches
            )
        )
        self.samples += sum(len(b) for b in batches)
        self.stored += sum(r.accepted for r in results)
        self.duplicates += sum(r.duplicates for r in results)


async def _prepare(
    maker: async_sessionmaker[AsyncSession], vehicle_id: int
) -> tuple[int, str, bool]:
    """The history device (id, fresh token) and whether the vehicle has any DTC history."""
    async with session_scope(maker) as session:
        vehicle = await session.get(Vehicle, vehicle_id)
        if vehicle is None:
            raise LookupError(f"no vehicle {vehicle_id}")
        device = await reissue_device(session, vehicle, HISTORY_DEVICE)
        has_dtcs = await has_dtc_history(session, vehicle_id)
        return device.device.id, device.token, has_dtcs


async def _report_dtcs(
    maker: async_sessionmaker[AsyncSession], vehicle_id: int, event: model.DtcEvent
) -> None:
    def entries(codes: Sequence[str]) -> list[DtcEntry]:
        return [DtcEntry(code=code, description=describe(code).description) for code in codes]

    report = BridgeDtcReport(
        ts=event.ts_ms,
        stored=entries(event.stored),
        pending=entries(event.pending),
        permanent=[],
        freeze_dtc=event.stored[0] if event.stored and event.freeze_frame else None,
        freeze_frame=event.freeze_frame,
    )
    async with session_scope(maker) as session:
        await apply_report(session, vehicle_id, report, alerts=False)


async def _overlaps_others(
    maker: async_sessionmaker[AsyncSession],
    vehicle_id: int,
    device_id: int,
    drive: model.HistoryDrive,
) -> bool:
    margin = DEFAULT_TRIP_JOIN_GAP_MS
    async with maker() as session:
        return await others_running(
            session,
            vehicle_id,
            device_id,
            drive.readings[0].ts_ms - margin,
            drive.readings[-1].ts_ms + margin,
        )


async def seed_history(
    maker: async_sessionmaker[AsyncSession],
    vehicle_id: int,
    *,
    now_ms: int | None = None,
    days: int = HISTORY_DAYS,
    seed: int = DEMO_SEED,
    tz: tzinfo | None = None,
) -> SeedReport:
    """Stores the demo car's drives of the last ``days`` days for the vehicle, builds their
    rollups and trips, and returns what was stored. ``tz``: the zone whose hours the drives
    keep (the machine's when None)."""
    started = time.monotonic()
    now = int(time.time() * 1000) if now_ms is None else now_ms
    device_id, token, has_dtcs = await _prepare(maker, vehicle_id)
    # The story of the trouble code is told once: a vehicle with codes has heard it.
    dtc_after = None if has_dtcs else now - DTC_STORY_AGO_MS
    broker = make_broker(None, "demo:")
    committer = IngestCommitter(maker, Pipeline.for_broker(broker))
    uploader = _Uploader(committer, token)
    drives = skipped = 0
    try:
        pending: list[bytes] = []
        pending_rows = 0
        previous: model.HistoryDrive | None = None
        for drive in model.history(seed, now - days * DAY_MS, now, tz=tz, dtc_after_ms=dtc_after):
            if await _overlaps_others(maker, vehicle_id, device_id, drive):
                skipped += 1
                previous = None
                continue
            rows = drive_rows(drive)
            if previous is not None:
                rows = parked_rows(previous, drive.readings[0].ts_ms) + rows
            previous = drive
            drives += 1
            bodies = list(encode_batches(rows))
            if drive.dtc_events:
                # The codes follow the drive they were read on, as the agent reports them.
                await uploader.upload([*pending, *bodies])
                pending, pending_rows = [], 0
                for event in drive.dtc_events:
                    await _report_dtcs(maker, vehicle_id, event)
                continue
            pending += bodies
            pending_rows += len(rows)
            if pending_rows >= _Uploader.MAX_IN_FLIGHT_ROWS:
                await uploader.upload(pending)
                pending, pending_rows = [], 0
        if pending:
            await uploader.upload(pending)
        await committer.close()
        await _build_derived_data(maker, broker, now)
    finally:
        await committer.close()
        async with session_scope(maker) as session:
            await retire_device(session, device_id)
        await broker.close()
    return SeedReport(
        drives=drives,
        skipped_drives=skipped,
        samples=uploader.samples,
        stored=uploader.stored,
        duplicates=uploader.duplicates,
        seconds=time.monotonic() - started,
    )


async def _build_derived_data(
    maker: async_sessionmaker[AsyncSession], broker: Broker, now_ms: int
) -> None:
    """Does the worker's work for what was stored: rollups, trips, finished trips."""
    worker = RollupWorker(maker, broker, WorkerConfig(consumer="demo-history", sweep_age_s=0.0))
    while await worker.sweep_once():
        pass
    await worker.finish_trips_once(now_ms)
