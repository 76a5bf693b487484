import csv
import io
import re
import unicodedata
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Literal

from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from obd2_dashboard.telemetry.repository import SampleRepository
from obd2_dashboard.units.service import pid_display
from obd2_dashboard.units.table import UnitSystem

TIME_COLUMNS = ["ts", "time"]


def download_name(vehicle_name: str, vehicle_id: int, ts: int, what: str, extension: str) -> str:
    """A file name a person can tell apart in their downloads: the vehicle, the (UTC) day the
    data starts, what it is: ``demo-car-2026-12-07-history.csv``. ASCII only, so it needs no
    encoding in Content-Disposition; a name with no letter or digit left becomes ``vehicle-ID``.
    """
    ascii_name = unicodedata.normalize("NFKD", vehicle_name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:40].strip("-")
    day = datetime.fromtimestamp(ts / 1000, UTC).strftime("%Y-%m-%d")
    return f"{slug or f'vehicle-{vehicle_id}'}-{day}-{what}.{extension}"


def column_name(pid: str, unit: str) -> str:
    """``SPEED (mph)``: the PID and the unit its column is in (a count has none)."""
    return f"{pid} ({unit})" if unit else pid


def _formatter(pid: str, system: UnitSystem) -> Callable[[float], str]:
    display = pid_display(pid, system)
    # repr: the shortest text that reads back as the same float, so a metric export holds the
    # stored values exactly (an inverse conversion of 0 gives "inf", which float() reads back).
    return lambda value: repr(display.value(float(value)))


def csv_header(pids: Sequence[str], system: UnitSystem) -> list[str]:
    return [*TIME_COLUMNS, *(column_name(pid, pid_display(pid, system).unit) for pid in pids)]


CsvLayout = Literal["wide", "long"]
LONG_HEADER = [*TIME_COLUMNS, "pid", "value", "unit"]


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts / 1000, UTC).isoformat(timespec="milliseconds")


def _csv_download(rows: AsyncIterator[str], filename: str) -> StreamingResponse:
    return StreamingResponse(
        rows,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _long_csv_response(
    sessionmaker: async_sessionmaker[AsyncSession],
    vehicle_id: int,
    pids: Sequence[str],
    start: int,
    end: int,
    filename: str,
    system: UnitSystem,
) -> StreamingResponse:
    formats = {pid: _formatter(pid, system) for pid in pids}
    units = {pid: pid_display(pid, system).unit for pid in pids}

    async def rows() -> AsyncIterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(LONG_HEADER)
        if pids:
            async with sessionmaker() as session:
                repository = SampleRepository(session)
                async for chunk in repository.stream_rows(vehicle_id, pids, start, end):
                    for ts, pid, value in chunk:
                        writer.writerow([ts, _iso(ts), pid, formats[pid](value), units[pid]])
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
        yield buffer.getvalue()

    return _csv_download(rows(), filename)


def samples_csv_response(
    sessionmaker: async_sessionmaker[AsyncSession],
    vehicle_id: int,
    pids: Sequence[str],
    start: int,
    end: int,
    filename: str,
    system: UnitSystem,
    layout: CsvLayout = "wide",
) -> StreamingResponse:
    """Raw samples of [start, end) as a streamed CSV download, a chunk of rows at a time.

    Wide (the default): one row per sample time and one column per PID, named with its unit in
    ``system`` (``ts,time,RPM (rpm),SPEED (mph)``); a PID with no sample at that time has an
    empty cell. Two samples of one PID at the same time (two devices) take a row each, so
    nothing stored is left out. Long: one row per sample, ``ts,time,pid,value,unit``.
    """
    if layout == "long":
        return _long_csv_response(sessionmaker, vehicle_id, pids, start, end, filename, system)
    column = {pid: i for i, pid in enumerate(pids)}
    formats = [_formatter(pid, system) for pid in pids]

    async def rows() -> AsyncIterator[str]:
        # The request's session is closed once the handler returns: stream on one of our own.
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(csv_header(pids, system))
        row_ts: int | None = None
        cells: list[str] = [""] * len(pids)

        def flush() -> None:
            if row_ts is None:
                return
            writer.writerow([row_ts, _iso(row_ts), *cells])

        if not pids:
            # A trip whose samples retention deleted: the header alone.
            yield buffer.getvalue()
            return
        async with sessionmaker() as session:
            async for chunk in SampleRepository(session).stream_rows(vehicle_id, pids, start, end):
                for ts, pid, value in chunk:
                    index = column[pid]
                    if ts != row_ts or cells[index]:
                        flush()
                        row_ts = ts
                        cells = [""] * len(pids)
                    cells[index] = formats[index](value)
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        flush()
        yield buffer.getvalue()

    return _csv_download(rows(), filename)
