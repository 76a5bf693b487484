"""backup, restore and restore-drill through the CLI, against the machine's PostgreSQL."""

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from obd2_dashboard.ops import pgtools, restore
from obd2_dashboard.ops.backup import (
    CHECKSUM_SUFFIX,
    MANIFEST_SUFFIX,
    PRE_MIGRATION_KEEP,
    Backup,
    backup_status,
    list_backups,
    prune,
    sha256_of,
)
from obd2_dashboard.ops.migrations import head_revision, upgrade_head
from obd2_dashboard.ops.pgtools import PgTarget, server_major
from obd2_dashboard.settings import async_database_url
from obd2_testkit.commands import DASHBOARD_CLI
from tests.conftest import _pg_url, create_pg_database, drop_pg_database

CLI = DASHBOARD_CLI


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def sql(url: str, statement: str) -> str:
    out = subprocess.run(
        ["psql", "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", url, "-c", statement],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return out.stdout.strip()


def databases_like(prefix: str) -> list[str]:
    listed = sql(_pg_url("postgres"), "SELECT datname FROM pg_database ORDER BY datname")
    return [name for name in listed.splitlines() if name.startswith(prefix)]


def make_env(database: str, backup_dir: Path) -> dict[str, str]:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("OBD2_", "DATABASE_", "REDIS_"))
    }
    environment |= {
        "DATABASE_URL": _pg_url(database),
        "BACKUP_DIR": str(backup_dir),
        "DATA_DIR": str(backup_dir.parent / "var"),
        "GIT_SHA": "0123456789abcdef",
    }
    upgrade_head(async_database_url(_pg_url(database)))
    return environment


@contextmanager
def scratch_database() -> Iterator[str]:
    name = create_pg_database()
    try:
        yield name
    finally:
        for leftover in databases_like(name):
            drop_pg_database(leftover)


def add_users(url: str, *emails: str) -> None:
    for email in emails:
        sql(
            url,
            "INSERT INTO users (email, password_hash, is_admin, created_at) "
            f"VALUES ('{email}', 'x', false, now())",
        )


def emails(url: str) -> list[str]:
    return sql(url, "SELECT email FROM users ORDER BY email").splitlines()


def take_backup(env: dict[str, str], *extra: str) -> tuple[Path, str]:
    """(the backup's path, the progress it printed)."""
    made = run_cli("backup", *extra, env=env)
    assert made.returncode == 0, made.stderr
    path = Path(made.stdout.strip())
    assert path.is_file()
    return path, made.stderr


@dataclass(frozen=True)
class BackedUp:
    env: dict[str, str]
    dump: Path


@pytest.fixture(scope="module")
def backed_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackedUp]:
    """One database with a user, and its backup; tests here only read them."""
    with scratch_database() as name:
        env = make_env(name, tmp_path_factory.mktemp("module") / "backups")
        add_users(env["DATABASE_URL"], "a@example.com")
        yield BackedUp(env, take_backup(env)[0])


def test_restore_brings_back_exactly_the_backed_up_rows(tmp_path: Path) -> None:
    with scratch_database() as name:
        env = make_env(name, tmp_path / "backups")
        url = env["DATABASE_URL"]
        add_users(url, "a@example.com", "b@example.com")
        sql(
            url,
            "INSERT INTO vehicles (owner_id, name, created_at) SELECT id, 'car', now() FROM users",
        )
        dump, shown = take_backup(env, "--pre-migration")

        assert dump.name.endswith(f"-rev.{head_revision()}-rel.0123456789ab-pre-migration.dump")
        assert "backup: dumping table public.users" in shown
        assert (dump.stat().st_mode & 0o777) == 0o640
        checksum = dump.with_name(dump.name + CHECKSUM_SUFFIX).read_text().split()
        assert checksum == [sha256_of(dump), dump.name]
        manifest = json.loads(dump.with_name(dump.name + MANIFEST_SUFFIX).read_text())
        assert manifest["tables"]["public.users"] == 2
        assert manifest["tables"]["public.vehicles"] == 2
        assert manifest["revision"] == head_revision()
        assert manifest["pre_migration"] is True

        add_users(url, "c@example.com")
        sql(url, "DROP TABLE vehicles CASCADE")
        restored = run_cli("restore", str(dump), "--target-url", url, "--yes", env=env)
        assert restored.returncode == 0, restored.stderr
        assert "restore: loading table public.users" in restored.stderr

        assert emails(url) == ["a@example.com", "b@example.com"]
        assert sql(url, "SELECT count(*) FROM vehicles") == "2"
        assert sql(url, "SELECT version_num FROM alembic_version") == head_revision()
        # The replaced database is kept, with the rows written after the backup.
        kept = [n for n in databases_like(name) if "_before_restore_" in n]
        assert len(kept) == 1
        assert emails(_pg_url(kept[0])) == ["a@example.com", "b@example.com", "c@example.com"]


def test_restore_needs_yes(backed_up: BackedUp) -> None:
    url = backed_up.env["DATABASE_URL"]
    refused = run_cli("restore", str(backed_up.dump), "--target-url", url, env=backed_up.env)
    assert refused.returncode == 2
    assert "--yes" in refused.stderr


def test_restore_drill_passes_and_drops_its_scratch_database(backed_up: BackedUp) -> None:
    drill = run_cli("restore-drill", env=backed_up.env)
    assert drill.returncode == 0, drill.stderr
    assert "2 rows as recorded" in drill.stdout  # a user and the migration row
    database = backed_up.env["DATABASE_URL"].rsplit("/", 1)[1]
    assert [n for n in databases_like(database) if "_drill_" in n] == []
    status = backup_status(Path(backed_up.env["BACKUP_DIR"]))
    assert status.drill_last_run_ok
    assert status.drill_last_success_timestamp > 0
    assert status.verified_count == 1


# pg_restore 17 (Debian 13's client) in front of an older server, as the compose path runs it:
# a stand-in that runs this machine's own pg_restore and says it is 17. Like 17, it writes
# `SET transaction_timeout = 0;` at the head of what it restores (only 17 knows that setting),
# and straight into an older server it fails as 17 does there.
NEWER_PG_RESTORE = """#!/bin/sh
case "$*" in *--version*) echo "pg_restore (PostgreSQL) 17.12"; exit 0;; esac
first='0,/^SET statement_timeout/s//SET transaction_timeout = 0;\\nSET statement_timeout/'
case "$*" in
  *--file=-*) exec {real} "$@" | sed "$first";;
  *--dbname=*) echo 'pg_restore: error: could not execute query: ERROR:  unrecognized \\
configuration parameter "transaction_timeout"' >&2; exit 1;;
  *) exec {real} "$@";;
esac
"""


def test_a_pg_restore_newer_than_the_server_restores_through_psql(
    backed_up: BackedUp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = asyncio.run(server_major(PgTarget.parse(_pg_url("postgres"))))
    real = pgtools.find_tool("pg_restore", server)
    stand_in = tmp_path / "pg_restore"
    stand_in.write_text(NEWER_PG_RESTORE.format(real=real))
    stand_in.chmod(0o755)
    # What 17 writes is refused by this server, fed to it as it is.
    refused = subprocess.run(
        f"{stand_in} --file=- {backed_up.dump} | psql -X -q -v ON_ERROR_STOP=1 "
        f"{_pg_url('postgres')} -c 'BEGIN' -f - -c 'ROLLBACK'",
        shell=True, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert refused.returncode != 0
    assert 'unrecognized configuration parameter "transaction_timeout"' in refused.stderr

    monkeypatch.setattr(
        restore,
        "find_tool",
        lambda name, major: stand_in if name == "pg_restore" else real.with_name(name),
    )
    # Small reads, so that lines and the end of the head fall across them.
    monkeypatch.setattr(pgtools, "PIPE_CHUNK", 61)
    directory = Path(backed_up.env["BACKUP_DIR"])
    message = asyncio.run(
        restore._drill(backed_up.env["DATABASE_URL"], directory, list_backups(directory)[0])
    )
    assert "2 rows as recorded" in message


def test_corrupted_backup_fails_with_exit_1_and_one_line(
    backed_up: BackedUp, tmp_path: Path
) -> None:
    for sidecar in (CHECKSUM_SUFFIX, MANIFEST_SUFFIX, ""):
        source = backed_up.dump.with_name(backed_up.dump.name + sidecar)
        shutil.copy(source, tmp_path / source.name)
    dump = tmp_path / backed_up.dump.name
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))
    env = backed_up.env | {"BACKUP_DIR": str(tmp_path)}

    restored = run_cli("restore", str(dump), "--target-url", env["DATABASE_URL"], "--yes", env=env)
    assert restored.returncode == 1
    assert restored.stderr.strip().splitlines() == [
        f"obd2-dashboard: {dump.name} does not match its sha256 checksum: the file is corrupt"
    ]
    drill = run_cli("restore-drill", env=env)
    assert drill.returncode == 1
    assert "does not match its sha256 checksum" in drill.stderr.strip().splitlines()[-1]
    status = backup_status(tmp_path)
    assert not status.drill_last_run_ok
    assert status.drill_last_success_timestamp == 0


def test_unverifiable_files_fail_loudly(backed_up: BackedUp, tmp_path: Path) -> None:
    cases = [(b"", "is empty: the dump is unusable"), (b"not a dump", "is not a readable dump")]
    for number, (content, message) in enumerate(cases):
        bogus = tmp_path / f"bogus{number}.dump"
        bogus.write_bytes(content)
        bogus.with_name(bogus.name + CHECKSUM_SUFFIX).write_text(f"{sha256_of(bogus)}  x\n")
        url = backed_up.env["DATABASE_URL"]
        restored = run_cli("restore", str(bogus), "--target-url", url, "--yes", env=backed_up.env)
        assert restored.returncode == 1
        lines = restored.stderr.strip().splitlines()
        assert len(lines) == 1, lines
        assert message in lines[0]


def test_backup_of_the_embedded_database_is_refused(tmp_path: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    environment["DATA_DIR"] = str(tmp_path)
    refused = run_cli("backup", env=environment)
    assert refused.returncode == 1
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "DATABASE_URL" in refused.stderr


def _fake_backup(directory: Path, age_h: int, *, pre_migration: bool) -> Backup:
    created = datetime(2026, 1, 1, tzinfo=UTC) - timedelta(hours=age_h)
    path = directory / f"obd2-dashboard-{created:%Y%m%dT%H%M%SZ}-rev.r-rel.x.dump"
    path.write_bytes(b"dump")
    made = Backup(path, created, "r", "x", pre_migration, sha256_of(path), 4, {"public.t": 1})
    made.manifest_path.write_text(json.dumps(made.manifest()))
    made.checksum_path.write_text(f"{made.sha256}  {path.name}\n")
    return made


def test_retention_keeps_the_newest_and_the_newest_pre_migration_backups(tmp_path: Path) -> None:
    old_pre = [_fake_backup(tmp_path, 100 + i, pre_migration=True) for i in range(3)]
    regular = [_fake_backup(tmp_path, i, pre_migration=False) for i in range(5)]

    pruned = prune(tmp_path, keep=2)

    kept = {b.path for b in list_backups(tmp_path)}
    assert kept == {b.path for b in regular[:2]} | {b.path for b in old_pre[:PRE_MIGRATION_KEEP]}
    assert {b.path for b in pruned} == {b.path for b in regular[2:]} | {old_pre[2].path}
    for gone in pruned:
        assert not gone.path.exists()
        assert not gone.manifest_path.exists()
        assert not gone.checksum_path.exists()
