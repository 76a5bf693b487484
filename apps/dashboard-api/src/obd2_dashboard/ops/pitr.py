"""Point-in-time recovery through pgBackRest: ``restore --to-time`` and ``restore-drill --repo``.

pgBackRest restores a whole cluster (every database of the PostgreSQL server), from its last
backup before the target and the archived WAL after it; PostgreSQL replays that WAL up to the
target time and opens. pgBackRest and the scratch server run as the cluster's own user
(``postgres``), who owns the data directory and reads pgBackRest's repository key: run by root,
the commands start them as that user; run by that user, as itself.

The drill never touches the live cluster's files: it restores into a scratch data directory,
starts a server there on a Unix socket only (no TCP port) with archiving off, so the scratch
server never pushes WAL into the live stanza, compares, stops it and deletes it.
"""

import asyncio
import os
import pwd
import secrets
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from obd2_dashboard.ops.backup import table_counts, write_drill_status
from obd2_dashboard.ops.errors import EXIT_OK, CommandError
from obd2_dashboard.ops.pgtools import PG_VERSIONED_BIN, PgTarget, progress, server_major
from obd2_dashboard.settings import Settings

DEFAULT_STANZA = "obd2"
PGBACKREST = "pgbackrest"
# PostgreSQL replays WAL at hundreds of MB a second, but a month of it from an off-site
# repository can take long: the deadline only stops a hang.
RECOVERY_DEADLINE_S = 6 * 3600.0
ARCHIVE_CHECK_TIMEOUT_S = 600
SAMPLES_TABLE = "public.samples"
# The scratch cluster is as big as the live one: on disk, not in /tmp (a tmpfs on Debian 13).
# mkdtemp makes a directory of its own in it (0700, a random name).
DEFAULT_SCRATCH_PARENT = Path("/var/tmp")  # noqa: S108
# A server replaying WAL needs at least the primary's values of these (PostgreSQL refuses to
# recover otherwise): the scratch server gets the live server's.
RECOVERY_MINIMUMS = (
    "max_connections",
    "max_worker_processes",
    "max_wal_senders",
    "max_prepared_transactions",
    "max_locks_per_transaction",
)


def parse_target_time(value: str) -> datetime:
    """An ISO 8601 time with its UTC offset; a time without one is refused (whose local time?)."""
    try:
        when = datetime.fromisoformat(value.strip().replace(" ", "T", 1))
    except ValueError as exc:
        raise ValueError(f"not an ISO 8601 time: {value!r}") from exc
    if when.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset: add Z or +HH:MM")
    return when.astimezone(UTC)


def pgbackrest_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")


CLUSTER_USER = "postgres"


def cluster_user() -> str | None:
    """The user to start pgBackRest and pg_ctl as: postgres when run by root (PostgreSQL refuses
    to run as root, and files restored by root would be root's), else None (as we are)."""
    return CLUSTER_USER if os.geteuid() == 0 else None


def _give_to_cluster_user(path: Path) -> None:
    if (user := cluster_user()) is not None:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


async def run_pgbackrest(*args: str) -> list[str]:
    """Runs pgBackRest, its log lines to stderr as they come; CommandError when it fails."""
    pgbackrest = shutil.which(PGBACKREST)
    if pgbackrest is None:
        raise CommandError("pgbackrest is not installed (apt-get install pgbackrest)")
    process = await asyncio.create_subprocess_exec(
        pgbackrest, *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, user=cluster_user(),
    )  # fmt: skip
    assert process.stdout is not None
    lines: list[str] = []
    async for raw in process.stdout:
        line = raw.decode(errors="replace").rstrip()
        lines.append(line)
        progress(f"pgbackrest: {line}")
    if await process.wait() != 0:
        failed = next((x for x in lines if "ERROR" in x), lines[-1] if lines else "no output")
        raise CommandError(f"pgbackrest {args[-1]} failed: {failed.strip()}")
    return lines


async def restore_to_time(when: datetime, *, stanza: str, repo: int | None) -> int:
    """Restores the stanza's cluster in place (``--delta``) to ``when``; PostgreSQL must be
    stopped (pgBackRest refuses otherwise). The server replays to ``when`` when next started."""
    target = pgbackrest_time(when)
    progress(f"restore: cluster of stanza {stanza} to {target} (PostgreSQL must be stopped)")
    await run_pgbackrest(
        f"--stanza={stanza}",
        *([f"--repo={repo}"] if repo is not None else []),
        "--delta",
        "--type=time",
        f"--target={target}",
        "--target-action=promote",
        "restore",
    )
    print(
        f"restored the cluster of stanza {stanza} to {target}: start PostgreSQL; it replays the "
        "archived WAL up to that time, then opens for writes on a new timeline",
        flush=True,
    )
    return EXIT_OK


@dataclass(frozen=True, slots=True)
class Snapshot:
    counts: dict[str, int]
    newest_sample_ts: int | None


async def _snapshot(connection: AsyncConnection) -> Snapshot:
    counts = await table_counts(connection)
    newest = None
    if SAMPLES_TABLE in counts:
        newest = (await connection.execute(text("SELECT max(ts) FROM samples"))).scalar()
    return Snapshot(counts, None if newest is None else int(newest))


async def restore_drill_from_repo(
    settings: Settings, *, stanza: str, repo: int, scratch_parent: Path = DEFAULT_SCRATCH_PARENT
) -> int:
    """Restores the live cluster from pgBackRest repository ``repo`` into a scratch cluster, up
    to a restore point made now, and compares the database's row counts and newest sample.

    The live database is counted just before and just after the restore point: on a quiet
    server both are the same and the restored copy must match them exactly; with writes in
    between, every restored count must lie between the two."""
    if settings.DATABASE_URL is None:
        raise CommandError("restore-drill needs DATABASE_URL (PostgreSQL)")
    directory = settings.BACKUP_DIR
    label = f"pgbackrest repo{repo}"
    try:
        live = PgTarget.parse(settings.DATABASE_URL)
        message = await _drill(live, stanza, repo, scratch_parent)
    except CommandError as exc:
        write_drill_status(directory, ok=False, backup_name=label, message=str(exc))
        raise
    except Exception as exc:
        write_drill_status(directory, ok=False, backup_name=label, message=str(exc))
        raise CommandError(f"restore drill from {label} failed: {exc}") from exc
    write_drill_status(directory, ok=True, backup_name=label, message=message)
    print(f"restore-drill: {message}", flush=True)
    return EXIT_OK


async def _drill(live: PgTarget, stanza: str, repo: int, scratch_parent: Path) -> str:
    major = await server_major(live)
    point = f"obd2-drill-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
    engine = live.engine(autocommit=True)
    try:
        async with engine.connect() as connection:
            minimums = {
                name: str((await connection.execute(text(f"SHOW {name}"))).scalar_one())
                for name in RECOVERY_MINIMUMS
            }
            before = await _snapshot(connection)
            await connection.execute(text("SELECT pg_create_restore_point(:p)"), {"p": point})
            after = await _snapshot(connection)
    finally:
        await engine.dispose()
    progress(f"restore-drill: restore point {point}; waiting for its WAL in every repository")
    # `check` switches to a new WAL segment and waits until the one holding the point is in
    # the repositories.
    await run_pgbackrest(
        f"--stanza={stanza}", f"--archive-timeout={ARCHIVE_CHECK_TIMEOUT_S}", "check"
    )
    scratch = Path(tempfile.mkdtemp(prefix="obd2-drill-", dir=scratch_parent))
    _give_to_cluster_user(scratch)
    data = scratch / "data"
    cluster = ScratchCluster(
        Path(PG_VERSIONED_BIN.format(major=major)), data, scratch, settings=minimums
    )
    try:
        await run_pgbackrest(
            f"--stanza={stanza}",
            f"--repo={repo}",
            f"--pg1-path={data}",
            "--type=name",
            f"--target={point}",
            "--target-action=promote",
            "--archive-mode=off",
            "--recovery-option=restore_command="
            f'pgbackrest --stanza={stanza} --repo={repo} --pg1-path={data} archive-get %f "%p"',
            "restore",
        )
        await cluster.start()
        restored = await cluster.snapshot(live.database)
    finally:
        await cluster.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    return compare_with_live(point, repo, before, after, restored)


def compare_with_live(
    point: str, repo: int, before: Snapshot, after: Snapshot, got: Snapshot
) -> str:
    problems = []
    for table in sorted(set(before.counts) | set(after.counts) | set(got.counts)):
        low, high = sorted((before.counts.get(table, -1), after.counts.get(table, -1)))
        rows = got.counts.get(table, -1)
        if not low <= rows <= high:
            expected = f"{low}" if low == high else f"{low}..{high}"
            problems.append(f"{table} {rows} (live {expected})")
    if not _newest_between(got.newest_sample_ts, before.newest_sample_ts, after.newest_sample_ts):
        problems.append(
            f"newest sample ts {got.newest_sample_ts} "
            f"(live {before.newest_sample_ts}..{after.newest_sample_ts})"
        )
    if problems:
        raise CommandError(f"repo{repo} at {point}: restored copy differs: {', '.join(problems)}")
    total = sum(got.counts.values())
    return (
        f"repo{repo} restored to restore point {point} in a scratch cluster and removed: "
        f"{len(got.counts)} tables, {total} rows, newest sample ts {got.newest_sample_ts}, "
        "as in the live database"
    )


def _newest_between(got: int | None, before: int | None, after: int | None) -> bool:
    if got is None:
        return before is None
    low = before if before is not None else got
    high = after if after is not None else low
    return min(low, high) <= got <= max(low, high)


@dataclass
class ScratchCluster:
    """A restored data directory served on a Unix socket in its own directory, archiving off."""

    bin: Path
    data: Path
    socket_dir: Path
    settings: dict[str, str] = field(default_factory=dict)
    log_name: str = "server.log"

    async def _pg_ctl(self, *args: str) -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            str(self.bin / "pg_ctl"), "-D", str(self.data), *args,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, user=cluster_user(), cwd=self.socket_dir,
        )  # fmt: skip
        out, _ = await process.communicate()
        return (process.returncode or 0), out.decode(errors="replace")

    async def start(self) -> None:
        # Debian keeps postgresql.conf and pg_hba.conf in /etc, not in the data directory: the
        # scratch server gets its own, which also keep it off the network and off the archive.
        (self.data / "postgresql.conf").write_text(
            "listen_addresses = ''\n"
            f"unix_socket_directories = '{self.socket_dir}'\n"
            "archive_mode = off\n"
            "shared_buffers = 128MB\n"
            + "".join(f"{name} = {value}\n" for name, value in self.settings.items())
            + f"hba_file = '{self.data / 'pg_hba.conf'}'\n"
            f"ident_file = '{self.data / 'pg_ident.conf'}'\n"
        )
        # Trust on a socket in a directory only the cluster's user (and root) can enter.
        (self.data / "pg_hba.conf").write_text("local all all trust\n")
        (self.data / "pg_ident.conf").write_text("")
        for name in ("postgresql.conf", "pg_hba.conf", "pg_ident.conf"):
            _give_to_cluster_user(self.data / name)
        log = self.socket_dir / self.log_name
        code, out = await self._pg_ctl("-l", str(log), "-w", "-t", "60", "start")
        if code != 0:
            tail = log.read_text(errors="replace")[-600:] if log.exists() else out
            raise CommandError(f"the scratch server did not start: {tail.strip()}")

    async def snapshot(self, database: str) -> Snapshot:
        user = cluster_user() or pwd.getpwuid(os.geteuid()).pw_name
        url = f"postgresql+asyncpg://{user}@/{database}?host={self.socket_dir}"
        engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
        try:
            deadline = asyncio.get_running_loop().time() + RECOVERY_DEADLINE_S
            while True:
                try:
                    async with engine.connect() as connection:
                        recovering = (
                            await connection.execute(text("SELECT pg_is_in_recovery()"))
                        ).scalar_one()
                        if not recovering:
                            return await _snapshot(connection)
                except (OSError, DBAPIError):
                    pass  # not yet accepting connections while it replays
                if asyncio.get_running_loop().time() > deadline:
                    raise CommandError("the scratch server is still recovering: gave up")
                await asyncio.sleep(0.5)
        finally:
            await engine.dispose()

    async def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            await self._pg_ctl("-m", "immediate", "-w", "stop")
