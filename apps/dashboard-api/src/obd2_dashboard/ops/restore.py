"""``restore`` and ``restore-drill``: a backup always goes into a scratch database first.

``restore`` then swaps the scratch database in by renaming (the database it replaces is kept
under a ``_before_restore_`` name, never dropped); ``restore-drill`` compares the scratch
database with the backup's manifest and drops it.
"""

import secrets
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.exc import DBAPIError

from obd2_dashboard.ops.backup import (
    Backup,
    backup_lock,
    list_backups,
    list_dump,
    migration_revision,
    read_checksum,
    require_nonempty,
    sha256_of,
    table_counts,
    write_drill_status,
)
from obd2_dashboard.ops.errors import EXIT_OK, CommandError
from obd2_dashboard.ops.pgtools import (
    PgTarget,
    admin_execute,
    database_exists,
    find_tool,
    installed_major,
    progress,
    quote_ident,
    restore_through_psql,
    run_tool,
    server_major,
    settings_unknown_to,
    tool_error,
)
from obd2_dashboard.settings import Settings

MAX_IDENTIFIER = 63
_LOADING = "processing data for table "


@dataclass(frozen=True, slots=True)
class Restored:
    revision: str
    counts: dict[str, int]


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%d_%H%M%S")


def _derived_name(base: str, suffix: str) -> str:
    return f"{base[: MAX_IDENTIFIER - len(suffix)]}{suffix}"


async def verify_file(dump: Path, target: PgTarget, pg_restore: Path) -> None:
    """Checksum and listing; CommandError with one line when the file cannot be trusted."""
    require_nonempty(dump)
    recorded = read_checksum(dump)
    if sha256_of(dump) != recorded:
        raise CommandError(f"{dump.name} does not match its sha256 checksum: the file is corrupt")
    await list_dump(pg_restore, dump, target)


def _restore_progress(line: str) -> None:
    if _LOADING in line:
        progress(f"restore: loading table {line.split(_LOADING, 1)[1].strip().strip(chr(34))}")


async def _restore_into_scratch(
    dump: Path, scratch: PgTarget, pg_restore: Path, server: int
) -> Restored:
    await admin_execute(scratch, f"CREATE DATABASE {quote_ident(scratch.database)}")
    options = ["--verbose", "--no-owner", "--no-acl", "--exit-on-error", "--single-transaction"]
    unknown = settings_unknown_to(server)
    if unknown and (installed_major(pg_restore) or 0) > server:
        code, lines = await restore_through_psql(
            pg_restore, find_tool("psql", server), options, dump, scratch, unknown,
            on_line=_restore_progress,
        )  # fmt: skip
    else:
        code, lines = await run_tool(
            [str(pg_restore), *options, f"--dbname={scratch.libpq_url()}", str(dump)],
            scratch,
            on_line=_restore_progress,
        )
    if code != 0:
        raise CommandError(f"pg_restore into {scratch.database} failed: {tool_error(lines)}")
    engine = scratch.engine()
    try:
        async with engine.connect() as connection:
            return Restored(await migration_revision(connection), await table_counts(connection))
    finally:
        await engine.dispose()


async def _drop(target: PgTarget) -> None:
    """Drops a scratch database. A plain DROP first: it stops an autovacuum worker that has
    started on the fresh tables by itself, where WITH (FORCE) would need a superuser to
    terminate it ("permission denied to terminate process"); FORCE only for a session of
    ours that is still connected."""
    drop = f"DROP DATABASE IF EXISTS {quote_ident(target.database)}"
    try:
        await admin_execute(target, drop)
    except DBAPIError as exc:
        if "being accessed by other users" not in str(exc):
            raise
        await admin_execute(target, f"{drop} WITH (FORCE)")


async def restore(settings: Settings, dump: Path, target_url: str) -> int:
    target = PgTarget.parse(target_url)
    major = await server_major(target.with_database("postgres"))
    pg_restore = find_tool("pg_restore", major)
    await verify_file(dump, target, pg_restore)
    stamp = _stamp()
    scratch = target.with_database(_derived_name(target.database, f"_restore_{stamp}"))
    kept = target.with_database(_derived_name(target.database, f"_before_restore_{stamp}"))
    progress(f"restore: {dump.name} -> scratch database {scratch.database}")
    try:
        restored = await _restore_into_scratch(dump, scratch, pg_restore, major)
    except BaseException:
        await _drop(scratch)
        raise
    name, old, new = (quote_ident(x.database) for x in (target, kept, scratch))
    if await database_exists(target):
        # No new session may open between the terminate and the rename.
        await admin_execute(
            target,
            f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false",
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{target.database}' AND pid <> pg_backend_pid()",
            f"ALTER DATABASE {name} RENAME TO {old}",
            f"ALTER DATABASE {new} RENAME TO {name}",
            f"ALTER DATABASE {old} WITH ALLOW_CONNECTIONS true",
        )
        print(
            f"restored {dump.name} into {target.describe()} (revision {restored.revision}, "
            f"{sum(restored.counts.values())} rows); the database it replaced is kept as "
            f"{kept.database}: drop it when no longer needed",
            flush=True,
        )
    else:
        await admin_execute(target, f"ALTER DATABASE {new} RENAME TO {name}")
        print(
            f"restored {dump.name} into {target.describe()} (revision {restored.revision}, "
            f"{sum(restored.counts.values())} rows)",
            flush=True,
        )
    return EXIT_OK


async def restore_drill(settings: Settings) -> int:
    if settings.DATABASE_URL is None:
        raise CommandError("restore-drill needs DATABASE_URL (PostgreSQL)")
    directory = settings.BACKUP_DIR
    backups = list_backups(directory)
    if not backups:
        write_drill_status(directory, ok=False, backup_name="", message="no verified backup")
        raise CommandError(f"no verified backup in {directory}: run `obd2-dashboard backup`")
    newest = backups[0]
    try:
        message = await _drill(settings.DATABASE_URL, directory, newest)
    except CommandError as exc:
        write_drill_status(directory, ok=False, backup_name=newest.path.name, message=str(exc))
        raise
    except Exception as exc:
        write_drill_status(directory, ok=False, backup_name=newest.path.name, message=str(exc))
        raise CommandError(f"restore drill of {newest.path.name} failed: {exc}") from exc
    write_drill_status(directory, ok=True, backup_name=newest.path.name, message=message)
    print(f"restore-drill: {message}", flush=True)
    return EXIT_OK


async def _drill(database_url: str, directory: Path, backup: Backup) -> str:
    target = PgTarget.parse(database_url)
    major = await server_major(target)
    pg_restore = find_tool("pg_restore", major)
    scratch = target.with_database(_derived_name(target.database, f"_drill_{secrets.token_hex(4)}"))
    with backup_lock(directory):
        await verify_file(backup.path, target, pg_restore)
        progress(f"restore-drill: {backup.path.name} -> scratch database {scratch.database}")
        try:
            restored = await _restore_into_scratch(backup.path, scratch, pg_restore, major)
        finally:
            await _drop(scratch)
    if restored.revision != backup.revision:
        raise CommandError(
            f"{backup.path.name}: restored revision {restored.revision}, "
            f"the backup recorded {backup.revision}"
        )
    differing = [
        f"{table} {restored.counts.get(table)} != {rows}"
        for table, rows in sorted(backup.tables.items())
        if restored.counts.get(table) != rows
    ]
    if differing:
        raise CommandError(f"{backup.path.name}: row counts differ: {', '.join(differing)}")
    total = sum(backup.tables.values())
    return (
        f"{backup.path.name} restored into a scratch database and dropped: revision "
        f"{restored.revision}, {len(backup.tables)} tables, {total} rows as recorded"
    )


def confirm_or_exit(yes: bool) -> None:
    if not yes:
        print(
            "obd2-dashboard: restore replaces the database at --target-url: add --yes to go ahead",
            file=sys.stderr,
        )
        raise SystemExit(2)
