"""A PostgreSQL cluster archiving into pgBackRest as shipped (``infra/pgbackrest``), with the
off-site repository (repo2) on an S3-compatible server on loopback, for tests and benchmarks.

Everything is of the caller's own: the cluster (initdb on a spare port; the machine's server on
5432 never gets archive_mode), the repositories, pgBackRest's spool, lock and log directories.
The shipped files are used as they are; only what points at this machine's paths and ports is
given through pgBackRest's ``PGBACKREST_*`` variables, which win over its configuration files.
"""

import asyncio
import os
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from obd2_testkit import REPO
from obd2_testkit.stack.processes import CLI, PostgresCluster, S3Server, wait_until

SHIPPED = REPO / "infra/pgbackrest"
STANZA = "obd2"
BUCKET = "obd2-offsite"
DATABASE = "obd2"


@dataclass
class BackRestRig:
    cluster: PostgresCluster
    s3: S3Server
    env: dict[str, str]

    @classmethod
    def create(cls, tmp: Path) -> "BackRestRig":
        cluster = PostgresCluster.create()
        try:
            s3 = S3Server(tmp / "s3").start()
        except BaseException:
            cluster.remove()
            raise
        s3.create_bucket(BUCKET)
        home = cluster.base / "pgbackrest"
        etc = home / "etc"
        (etc / "conf.d").mkdir(parents=True)
        shutil.copy(SHIPPED / "pgbackrest.conf", etc / "pgbackrest.conf")
        secret_conf = etc / "conf.d/obd2-secrets.conf"
        passphrase = secrets.token_urlsafe(36)
        secret_conf.write_text(
            (SHIPPED / "obd2-secrets.conf.example")
            .read_text()
            .replace("repo2-cipher-pass=CHANGE-ME", f"repo2-cipher-pass={passphrase}")
            .replace("repo2-s3-key=CHANGE-ME", "repo2-s3-key=test")
            .replace("repo2-s3-key-secret=CHANGE-ME", "repo2-s3-key-secret=test")
        )
        secret_conf.chmod(0o600)
        for name in ("repo1", "spool", "log", "lock"):
            (home / name).mkdir()
        shutil.copy(s3.ca_file, home / "s3-ca.pem")
        cluster.give(home)
        env = os.environ | {
            "PGBACKREST_CONFIG_PATH": str(etc),
            "PGBACKREST_REPO1_PATH": str(home / "repo1"),
            "PGBACKREST_SPOOL_PATH": str(home / "spool"),
            "PGBACKREST_LOG_PATH": str(home / "log"),
            "PGBACKREST_LOCK_PATH": str(home / "lock"),
            "PGBACKREST_PG1_PATH": str(cluster.data),
            "PGBACKREST_PG1_PORT": str(cluster.port),
            "PGBACKREST_PG1_SOCKET_PATH": str(cluster.base),
            "PGBACKREST_REPO2_S3_BUCKET": BUCKET,
            "PGBACKREST_REPO2_S3_ENDPOINT": "127.0.0.1",
            "PGBACKREST_REPO2_S3_REGION": "us-east-1",
            "PGBACKREST_REPO2_STORAGE_PORT": str(s3.port),
            "PGBACKREST_REPO2_STORAGE_CA_FILE": str(home / "s3-ca.pem"),
        }
        cluster.env = env
        rig = cls(cluster, s3, env)
        try:
            cluster.add_settings((SHIPPED / "postgresql-archiving.conf").read_text())
            cluster.start()
            rig.pgbackrest("stanza-create")
            rig.pgbackrest("check")
        except BaseException:
            rig.close()
            raise
        return rig

    def pgbackrest(self, *args: str, timeout: float = 1800) -> str:
        """``pgbackrest --stanza=obd2 ARGS`` as the cluster's user, as the guide runs it."""
        done = self.cluster.run_as_owner("pgbackrest", f"--stanza={STANZA}", *args, timeout=timeout)
        assert done.returncode == 0, f"pgbackrest {args}: {done.stdout}{done.stderr}"
        return done.stdout

    def backup(self, kind: str = "full") -> None:
        """What the timers run: one backup into each repository."""
        for repo in ("1", "2"):
            self.pgbackrest(f"--type={kind}", f"--repo={repo}", "backup")

    def url(self, database: str) -> str:
        return self.cluster.url(database)

    def wait_open(self, url: str, timeout: float = 600) -> None:
        """Until the restored server opens for writes; fails at once if it stops instead (e.g.
        "recovery ended before configured recovery target was reached")."""

        def opened() -> bool:
            if not (self.cluster.data / "postmaster.pid").exists():
                log = self.cluster.log.read_text(errors="replace")
                raise AssertionError(f"the restored server stopped:\n{log[-2000:]}")
            return opened_for_writes(url)

        wait_until(opened, timeout, "the restored cluster to open for writes")

    def cli(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 1800
    ) -> subprocess.CompletedProcess[str]:
        """``obd2-dashboard ARGS`` as the test's user, with pgBackRest's variables."""
        return subprocess.run(
            [CLI, *args], env=self.env | (env or {}), capture_output=True, text=True,
            timeout=timeout, check=False,
        )  # fmt: skip

    def close(self) -> None:
        self.cluster.remove()
        self.s3.stop()


@dataclass(frozen=True)
class Written:
    seq: int
    sent_at: float
    acknowledged_at: float


def migrated(rig: BackRestRig) -> str:
    async def create() -> None:
        connection = await asyncpg.connect(rig.url("postgres"))
        try:
            await connection.execute(f"CREATE DATABASE {DATABASE}")
        finally:
            await connection.close()

    asyncio.run(create())
    url = rig.url(DATABASE)
    done = rig.cli("migrate", env={"DATABASE_URL": url})
    assert done.returncode == 0, done.stderr
    return url


async def write_samples(url: str, seqs: range, *, until: float = 0.0) -> list[Written]:
    """One sample per commit, for each of ``seqs`` and on until the clock passes ``until``; a
    sample is acknowledged when its INSERT's commit returns."""
    connection = await asyncpg.connect(url)
    written: list[Written] = []
    seq = seqs.start
    try:
        while seq < seqs.stop or time.time() < until:
            sent_at = time.time()
            await connection.execute(
                "INSERT INTO samples (device_id, seq, vehicle_id, ts, pid, value) "
                "VALUES (1, $1, 1, $2, '0C', $3)",
                seq, int(sent_at * 1000), float(seq),
            )  # fmt: skip
            written.append(Written(seq, sent_at, time.time()))
            seq += 1
    finally:
        await connection.close()
    return written


async def stored_seqs(url: str) -> set[int]:
    connection = await asyncpg.connect(url)
    try:
        return {row["seq"] for row in await connection.fetch("SELECT seq FROM samples")}
    finally:
        await connection.close()


def opened_for_writes(url: str) -> bool:
    async def ask() -> bool:
        try:
            connection = await asyncpg.connect(url, timeout=2)
        except (OSError, asyncpg.PostgresError):
            return False
        try:
            return not await connection.fetchval("SELECT pg_is_in_recovery()")
        finally:
            await connection.close()

    return asyncio.run(ask())
