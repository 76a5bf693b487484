import csv
import io
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from obd2_dashboard.telemetry.repository import SampleRepository

CSV_HEADER = ["ts", "time", "pid", "value"]


def samples_csv_response(
    sessionmaker: async_sessionmaker[AsyncSession],
    vehicle_id: int,
    pids: Sequence[str],
    start: int,
    end: int,
    filename: str,
) -> StreamingResponse:
    """Raw samples of [start, end) as a streamed CSV download, a chunk of rows at a time."""

    async def rows() -> AsyncIterator[str]:
        # The request's session is closed once the handler returns: stream on one of our own.
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(CSV_HEADER)
        async with sessionmaker() as session:
            async for chunk in SampleRepository(session).stream_rows(vehicle_id, pids, start, end):
                for ts, pid, value in chunk:
                    iso = datetime.fromtimestamp(ts / 1000, UTC).isoformat(timespec="milliseconds")
                    writer.writerow([ts, iso, pid, repr(float(value))])
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
