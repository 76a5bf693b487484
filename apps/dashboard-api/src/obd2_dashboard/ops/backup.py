"""``obd2-dashboard backup``: a verified, checksummed ``pg_dump -Fc`` of the whole database.

A backup is three files in ``BACKUP_DIR``: ``NAME.dump``, ``NAME.dump.sha256`` (``sha256sum -c``
reads it) and ``NAME.dump.json`` (revision, release, row counts). The dump is written to
``NAME.dump.partial``, listed with ``pg_restore --list`` (which must show the migration table),
checksummed, and renamed last: a ``.dump`` file exists only once it has been verified.

The row counts are taken in the very snapshot pg_dump dumps (``pg_export_snapshot``), so a
restore drill can demand exactly those numbers back.
"""

import fcntl
import hashlib
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from obd2_dashboard.kit.version import git_sha
from obd2_dashboard.ops.errors import EXIT_OK, CommandError
from obd2_dashboard.ops.pgtools import (
    PgTarget,
    capture,
    find_tool,
    progress,
    run_tool,
    server_major,
    tool_error,
)
from obd2_dashboard.settings import Settings

PREFIX = "obd2-dashboard"
DUMP_SUFFIX = ".dump"
PARTIAL_SUFFIX = ".partial"
CHECKSUM_SUFFIX = ".sha256"
MANIFEST_SUFFIX = ".json"
MIGRATION_TABLE = "alembic_version"
# Retention by count never deletes this many of the newest pre-migration backups: they are what
# a rollback across a migration restores.
PRE_MIGRATION_KEEP = 2
DRILL_STATUS_FILE = "restore-drill.json"
# Dumps hold password and token hashes: readable by the service's group at most.
BACKUP_FILE_MODE = 0o640
_UNSAFE = re.compile(r"[^A-Za-z0-9._]+")
_DUMPING = re.compile(r'dumping contents of table "?([^"]+)"?')


@dataclass(frozen=True, slots=True)
class Backup:
    path: Path
    created_at: datetime
    revision: str
    release: str
    pre_migration: bool
    sha256: str
    size_bytes: int
    tables: dict[str, int] = field(default_factory=dict)

    @property
    def checksum_path(self) -> Path:
        return self.path.with_name(self.path.name + CHECKSUM_SUFFIX)

    @property
    def manifest_path(self) -> Path:
        return self.path.with_name(self.path.name + MANIFEST_SUFFIX)

    def manifest(self) -> dict[str, Any]:
        return {
            "file": self.path.name,
            "created_at": self.created_at.isoformat(),
            "revision": self.revision,
            "release": self.release,
            "pre_migration": self.pre_migration,
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "tables": self.tables,
        }

    @classmethod
    def from_manifest(cls, dump: Path) -> "Backup":
        data = json.loads(dump.with_name(dump.name + MANIFEST_SUFFIX).read_text())
        return cls(
            path=dump,
            created_at=datetime.fromisoformat(data["created_at"]),
            revision=str(data["revision"]),
            release=str(data["release"]),
            pre_migration=bool(data["pre_migration"]),
            sha256=str(data["sha256"]),
            size_bytes=int(data["size_bytes"]),
            tables={str(k): int(v) for k, v in data["tables"].items()},
        )


def list_backups(directory: Path) -> list[Backup]:
    """The verified backups in ``directory``, newest first (unreadable manifests are skipped)."""
    if not directory.is_dir():
        return []
    found: list[Backup] = []
    for dump in directory.glob(f"{PREFIX}-*{DUMP_SUFFIX}"):
        try:
            found.append(Backup.from_manifest(dump))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return sorted(found, key=lambda b: b.created_at, reverse=True)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_checksum(path: Path) -> str:
    """The hex digest recorded in ``FILE.sha256`` for ``path``; CommandError when missing."""
    checksum = path.with_name(path.name + CHECKSUM_SUFFIX)
    try:
        recorded = checksum.read_text().split()
    except OSError as exc:
        raise CommandError(f"{path.name}: no readable checksum file {checksum.name}") from exc
    if not recorded or not re.fullmatch(r"[0-9a-f]{64}", recorded[0]):
        raise CommandError(f"{checksum.name} is not a sha256 checksum file")
    return recorded[0]


def require_nonempty(dump: Path) -> None:
    if not dump.is_file():
        raise CommandError(f"{dump}: no such backup file")
    if dump.stat().st_size == 0:
        raise CommandError(f"{dump.name} is empty: the dump is unusable")


async def list_dump(pg_restore: Path, dump: Path, target: PgTarget) -> list[str]:
    """``pg_restore --list``: CommandError unless the dump is readable and lists the migrations."""
    require_nonempty(dump)
    code, listing, errors = await capture([str(pg_restore), "--list", str(dump)], target)
    if code != 0:
        raise CommandError(f"{dump.name} is not a readable dump: {tool_error(errors)}")
    if not any(f" TABLE DATA public {MIGRATION_TABLE} " in f" {line} " for line in listing):
        raise CommandError(f"{dump.name} holds no {MIGRATION_TABLE} table data: unusable dump")
    return listing


@contextmanager
def backup_lock(directory: Path) -> Iterator[None]:
    # Read-only is enough for flock, so the deploy user and the service user (one group) share it.
    fd = os.open(directory / ".backup.lock", os.O_RDONLY | os.O_CREAT, 0o640)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise CommandError(f"another backup or restore is running in {directory}") from exc
        yield
    finally:
        os.close(fd)


def _safe(value: str) -> str:
    return _UNSAFE.sub("-", value).strip("-") or "unknown"


def _name(created_at: datetime, revision: str, release: str, *, pre_migration: bool) -> str:
    stamp = created_at.strftime("%Y%m%dT%H%M%SZ")
    tail = "-pre-migration" if pre_migration else ""
    return f"{PREFIX}-{stamp}-rev.{_safe(revision)}-rel.{_safe(release)}{tail}{DUMP_SUFFIX}"


async def migration_revision(connection: AsyncConnection) -> str:
    has_migrations = (
        await connection.execute(text("SELECT to_regclass(:t)"), {"t": f"public.{MIGRATION_TABLE}"})
    ).scalar()
    if has_migrations is None:
        raise CommandError(
            f"the database has no {MIGRATION_TABLE} table: run `obd2-dashboard migrate` first"
        )
    revision = (
        await connection.execute(text(f"SELECT version_num FROM {MIGRATION_TABLE}"))
    ).scalar()
    return str(revision or "none")


async def table_counts(connection: AsyncConnection) -> dict[str, int]:
    tables = (
        await connection.execute(
            text(
                "SELECT schemaname, tablename FROM pg_tables "
                "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') "
                "ORDER BY schemaname, tablename"
            )
        )
    ).all()
    counts: dict[str, int] = {}
    for schema, table in tables:
        qualified = f'"{schema}"."{table}"'
        counts[f"{schema}.{table}"] = int(
            (await connection.execute(text(f"SELECT count(*) FROM {qualified}"))).scalar_one()
        )
    return counts


async def backup(settings: Settings, *, keep: int, pre_migration: bool) -> int:
    if settings.DATABASE_URL is None:
        raise CommandError("backup needs DATABASE_URL (PostgreSQL); the embedded SQLite is a file")
    target = PgTarget.parse(settings.DATABASE_URL)
    directory = settings.BACKUP_DIR
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CommandError(f"cannot create BACKUP_DIR {directory}: {exc.strerror}") from exc
    major = await server_major(target)
    pg_dump, pg_restore = find_tool("pg_dump", major), find_tool("pg_restore", major)
    release = git_sha(settings.GIT_SHA)[:12]
    with backup_lock(directory):
        for stale in directory.glob(f"{PREFIX}-*{PARTIAL_SUFFIX}"):
            progress(f"backup: removing unfinished {stale.name}")
            stale.unlink(missing_ok=True)
        made = await _dump(target, directory, pg_dump, pg_restore, release, pre_migration)
        print(made.path, flush=True)
        for pruned in prune(directory, keep):
            progress(f"backup: pruned {pruned.path.name}")
    return EXIT_OK


async def _dump(
    target: PgTarget,
    directory: Path,
    pg_dump: Path,
    pg_restore: Path,
    release: str,
    pre_migration: bool,
) -> Backup:
    created_at = datetime.now(UTC)
    engine = target.engine()
    try:
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="REPEATABLE READ")
            async with connection.begin():
                snapshot = str(
                    (await connection.execute(text("SELECT pg_export_snapshot()"))).scalar_one()
                )
                revision = await migration_revision(connection)
                counts = await table_counts(connection)
                name = _name(created_at, revision, release, pre_migration=pre_migration)
                final = _unused(directory / name)
                partial = final.with_name(final.name + PARTIAL_SUFFIX)
                progress(
                    f"backup: {target.describe()} at revision {revision}, "
                    f"{sum(counts.values())} rows in {len(counts)} tables -> {final.name}"
                )
                code, lines = await run_tool(
                    [
                        str(pg_dump),
                        "--format=custom",
                        "--verbose",
                        f"--snapshot={snapshot}",
                        f"--file={partial}",
                        f"--dbname={target.libpq_url()}",
                    ],
                    target,
                    on_line=_dump_progress,
                )
    except CommandError:
        raise
    except Exception as exc:
        raise CommandError(f"backup of {target.describe()} failed: {exc}") from exc
    finally:
        await engine.dispose()
    if code != 0:
        partial.unlink(missing_ok=True)
        raise CommandError(f"pg_dump failed: {tool_error(lines)}")
    try:
        partial.chmod(BACKUP_FILE_MODE)
        await list_dump(pg_restore, partial, target)
        made = Backup(
            path=final,
            created_at=created_at,
            revision=revision,
            release=release,
            pre_migration=pre_migration,
            sha256=sha256_of(partial),
            size_bytes=partial.stat().st_size,
            tables=counts,
        )
        _write_atomic(made.checksum_path, f"{made.sha256}  {final.name}\n")
        _write_atomic(made.manifest_path, json.dumps(made.manifest(), indent=2) + "\n")
        os.replace(partial, final)
    except BaseException:
        for leftover in (partial, final.with_name(final.name + CHECKSUM_SUFFIX)):
            leftover.unlink(missing_ok=True)
        final.with_name(final.name + MANIFEST_SUFFIX).unlink(missing_ok=True)
        raise
    progress(f"backup: verified {final.name} ({made.size_bytes / 1048576:.1f} MiB)")
    return made


def _unused(path: Path) -> Path:
    if path.exists():
        raise CommandError(f"{path} exists already: try again in a second")
    return path


def _dump_progress(line: str) -> None:
    match = _DUMPING.search(line)
    if match:
        progress(f"backup: dumping table {match.group(1)}")


def _write_atomic(path: Path, content: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(content)
    tmp.chmod(BACKUP_FILE_MODE)
    os.replace(tmp, path)


def prune(directory: Path, keep: int) -> list[Backup]:
    """Deletes all but the ``keep`` newest backups and the newest pre-migration ones."""
    backups = list_backups(directory)
    kept = {b.path for b in backups[:keep]}
    kept |= {b.path for b in [b for b in backups if b.pre_migration][:PRE_MIGRATION_KEEP]}
    pruned = [b for b in backups if b.path not in kept]
    for old in pruned:
        for path in (old.path, old.checksum_path, old.manifest_path):
            path.unlink(missing_ok=True)
    return pruned


@dataclass(frozen=True, slots=True)
class BackupStatus:
    """What /metrics says about backups and drills (read from BACKUP_DIR at each scrape)."""

    verified_count: int
    newest_timestamp: float
    newest_size_bytes: int
    drill_last_run_timestamp: float
    drill_last_success_timestamp: float
    drill_last_run_ok: bool


def backup_status(directory: Path) -> BackupStatus:
    backups = list_backups(directory)
    newest = backups[0] if backups else None
    drill = read_drill_status(directory)
    return BackupStatus(
        verified_count=len(backups),
        newest_timestamp=newest.created_at.timestamp() if newest else 0.0,
        newest_size_bytes=newest.size_bytes if newest else 0,
        drill_last_run_timestamp=float(drill.get("last_run", 0.0)),
        drill_last_success_timestamp=float(drill.get("last_success", 0.0)),
        drill_last_run_ok=bool(drill.get("ok", False)),
    )


def read_drill_status(directory: Path) -> dict[str, Any]:
    try:
        data = json.loads((directory / DRILL_STATUS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_drill_status(directory: Path, *, ok: bool, backup_name: str, message: str) -> None:
    now = datetime.now(UTC).timestamp()
    previous = read_drill_status(directory)
    status = {
        "last_run": now,
        "ok": ok,
        "backup": backup_name,
        "message": message,
        "last_success": now if ok else float(previous.get("last_success", 0.0)),
    }
    directory.mkdir(parents=True, exist_ok=True)
    _write_atomic(directory / DRILL_STATUS_FILE, json.dumps(status, indent=2) + "\n")
