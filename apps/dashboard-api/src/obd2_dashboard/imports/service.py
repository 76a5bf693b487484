"""Imports a log file for a vehicle through the ingest path, as backfill.

The samples are stored by the ingest committer as one device of the vehicle, "Import", whose
token is renewed for the run and revoked after it; their batches are backfill (no live
fan-out, no alerts, no MQTT), and the worker's rollups and trips are built before the import
returns. Each sample's seq is its time and PID, so importing a file twice stores nothing twice.
"""

import asyncio
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from obd2_dashboard.devices.service import reissue_device, retire_device
from obd2_dashboard.imports.formats import (
    ImportFormat,
    Reading,
    Skips,
    UnreadableLogError,
    guess_format,
    read_csv,
    read_gpx,
)
from obd2_dashboard.kit.broker import make_broker
from obd2_dashboard.kit.db import session_scope
from obd2_dashboard.models import Vehicle
from obd2_dashboard.pids.definitions import PidNames
from obd2_dashboard.pids.service import define
from obd2_dashboard.telemetry.committer import IngestCommitter
from obd2_dashboard.telemetry.service import Pipeline, stored_by_others
from obd2_dashboard.telemetry.worker import RollupWorker, WorkerConfig
from obd2_protocol import MAX_BATCH_SAMPLES

IMPORT_DEVICE = "Import"
# Batches handed to the committer at once: well under its queue limit.
BATCHES_IN_FLIGHT = 8
# Largest file the server reads: a year of one-second rows of a few dozen PIDs.
MAX_IMPORT_BYTES = 512 * 1024 * 1024

Progress = Callable[[int, int], None]  # (samples read, stored so far)


@dataclass(frozen=True, slots=True)
class ImportOptions:
    fmt: ImportFormat | None = None
    mapping: Mapping[str, str] = field(default_factory=dict)
    rate_hz: float | None = None
    start_ms: int | None = None
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class ImportSummary:
    format: str
    samples_read: int
    stored: int
    duplicates: int
    skipped_rows: dict[str, int]
    skipped_values: dict[str, int]
    unknown_columns: list[str]
    first_ts: int | None
    last_ts: int | None
    dry_run: bool
    seconds: float


def readings(
    data: bytes, options: ImportOptions, skips: Skips
) -> tuple[ImportFormat, Iterator[Reading]]:
    """The file's format and its readings; ``UnreadableLogError`` for a file that cannot be read."""
    fmt = options.fmt or guess_format(data[:8192])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    if fmt is ImportFormat.gpx:
        if not text.lstrip().startswith("<"):
            raise UnreadableLogError("not a GPX file: it does not start with XML")
        return fmt, read_gpx(text, skips)
    if text.lstrip().startswith("<"):
        raise UnreadableLogError(f"an XML file is no {fmt.value} log")
    return fmt, read_csv(
        text,
        fmt,
        skips,
        mapping=options.mapping,
        rate_hz=options.rate_hz,
        start_ms=options.start_ms,
    )


def _chunks(items: Iterable[Reading], size: int) -> Iterator[list[Reading]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


async def import_log(
    maker: async_sessionmaker[AsyncSession],
    vehicle_id: int,
    data: bytes,
    options: ImportOptions,
    progress: Progress | None = None,
) -> ImportSummary:
    """Reads the file and stores its samples for the vehicle; with ``dry_run`` only reads it.

    ``UnreadableLogError`` before anything is stored when the file cannot be imported;
    ``LookupError`` for an unknown vehicle.
    """
    started = time.monotonic()
    if len(data) > MAX_IMPORT_BYTES:
        raise UnreadableLogError(f"the file is larger than {MAX_IMPORT_BYTES // 2**20} MiB")
    skips = Skips()
    fmt, source = readings(data, options, skips)
    read = stored = duplicates = 0
    first: int | None = None
    last: int | None = None

    def seen(chunk: list[Reading]) -> None:
        nonlocal read, first, last
        read += len(chunk)
        low, high = min(r.ts for r in chunk), max(r.ts for r in chunk)
        first = low if first is None else min(first, low)
        last = high if last is None else max(last, high)

    if options.dry_run:
        async with maker() as session:
            if await session.get(Vehicle, vehicle_id) is None:
                raise LookupError(f"no vehicle {vehicle_id}")
        for chunk in _chunks(source, MAX_BATCH_SAMPLES):
            seen(chunk)
            if progress is not None:
                progress(read, 0)
    else:
        # Read the first batch before a device is made: a file that fails at once stores nothing.
        chunks = _chunks(source, MAX_BATCH_SAMPLES)
        head = next(chunks, None)
        if head is None:
            raise UnreadableLogError("the file has no value to import" + _why(skips))
        async with session_scope(maker) as session:
            vehicle = await session.get(Vehicle, vehicle_id)
            if vehicle is None:
                raise LookupError(f"no vehicle {vehicle_id}")
            device = await reissue_device(session, vehicle, IMPORT_DEVICE)
            # What the file says of names the server does not define (display name, unit).
            await define(
                session,
                vehicle_id,
                [
                    PidNames(pid, "import", display_name=header, unit=unit)
                    for pid, header, unit in skips.names
                ],
            )
        broker = make_broker(None, "import:")
        committer = IngestCommitter(maker, Pipeline.for_broker(broker))
        try:
            # Several batches in flight at once share the committer's transactions, as
            # concurrent uploads do.
            batches = _prepend(head, chunks)
            while group := list(islice(batches, BATCHES_IN_FLIGHT)):
                fresh: list[list[Reading]] = []
                for chunk in group:
                    seen(chunk)
                    kept = await _not_stored_by_others(maker, vehicle_id, device.device.id, chunk)
                    duplicates += len(chunk) - len(kept)
                    if kept:
                        fresh.append(kept)
                results = await asyncio.gather(
                    *(
                        committer.store(device.token, kept, transport="import", backfill=True)
                        for kept in fresh
                    )
                )
                stored += sum(r.accepted for r in results)
                duplicates += sum(r.duplicates for r in results)
                if progress is not None:
                    progress(read, stored)
            await committer.close()
            worker = RollupWorker(maker, broker, WorkerConfig(consumer="import", sweep_age_s=0.0))
            while await worker.sweep_once():
                pass
            await worker.finish_trips_once(int(time.time() * 1000))
        finally:
            await committer.close()
            async with session_scope(maker) as session:
                await retire_device(session, device.device.id)
            await broker.close()
    return ImportSummary(
        format=fmt.value,
        samples_read=read,
        stored=stored,
        duplicates=duplicates,
        skipped_rows=dict(skips.rows),
        skipped_values=dict(skips.values),
        unknown_columns=skips.columns,
        first_ts=first,
        last_ts=last,
        dry_run=options.dry_run,
        seconds=round(time.monotonic() - started, 3),
    )


async def _not_stored_by_others(
    maker: async_sessionmaker[AsyncSession], vehicle_id: int, device_id: int, chunk: list[Reading]
) -> list[Reading]:
    """The readings no other device of the vehicle stored (an agent's upload of the same
    drive, an earlier import of our own CSV export): those are duplicates too."""
    async with maker() as session:
        others = await stored_by_others(
            session,
            vehicle_id,
            device_id,
            min(r.ts for r in chunk),
            max(r.ts for r in chunk),
            sorted({r.pid for r in chunk}),
        )
    return [r for r in chunk if (r.ts, r.pid) not in others] if others else chunk


def _prepend(head: list[Reading], rest: Iterator[list[Reading]]) -> Iterator[list[Reading]]:
    yield head
    yield from rest


def _why(skips: Skips) -> str:
    reasons = [*skips.rows, *skips.values]
    if skips.columns:
        reasons.append("unknown columns: " + ", ".join(skips.columns[:10]))
    return f" ({'; '.join(reasons)})" if reasons else ""
