"""What the database itself reports about its health, for /metrics."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True, slots=True)
class WalArchiver:
    """PostgreSQL's ``pg_stat_archiver`` (counts since its statistics were last reset) and
    whether ``archive_mode`` is on."""

    enabled: bool
    archived_count: int
    failed_count: int
    last_archived_at: datetime | None
    last_failed_at: datetime | None


async def wal_archiver(session: AsyncSession) -> WalArchiver | None:
    """The WAL archiver's state; None on SQLite, which has no WAL archiving."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    # pg_stat_archiver is readable by any role, so the application's own role can see it.
    row = (
        await session.execute(
            text(
                "SELECT current_setting('archive_mode') <> 'off' AS enabled, archived_count,"
                " failed_count, last_archived_time, last_failed_time FROM pg_stat_archiver"
            )
        )
    ).one()
    return WalArchiver(
        enabled=bool(row.enabled),
        archived_count=int(row.archived_count),
        failed_count=int(row.failed_count),
        last_archived_at=row.last_archived_time,
        last_failed_at=row.last_failed_time,
    )
