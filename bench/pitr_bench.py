"""Point-in-time recovery benchmark: the recovery point and the recovery time with pgBackRest.

The cluster archives into pgBackRest as shipped (``infra/pgbackrest``: ``archive_timeout = 60``,
``archive-async``), repo1 on its disk and repo2, encrypted, on an S3-compatible server on loopback
(``stack.pgbackrest``, the tests' rig).

- Recovery point (the disk dies): samples are committed at a car's pace (20 a second, one commit
  each) after a full backup; at a random moment within two archive_timeouts the server is killed
  and its data directory, WAL and all, deleted. Restored from the off-site repository to the end
  of its archived WAL, the figure is the acknowledged data lost: from the acknowledgement of the
  newest sample that came back to that of the newest that was acknowledged. The shipped
  archive_timeout bounds it (plus the asynchronous push); target: at most 75 s.
- Recovery time for a 1 GB database (100 MB with --short): samples generated in the database up
  to that size, a full backup into each repository (timed too), the data directory deleted, then
  `obd2-dashboard restore --to-time` a moment after the backup from repo2 and from repo1, each
  until the server opens for writes.

    .venv/bin/python bench/run.py pitr            # 3 recovery-point trials, 1 GB
    .venv/bin/python bench/run.py --short pitr    # 1 trial, 100 MB

Run as root, like the suite (the cluster then belongs to ``postgres``).
"""

import asyncio
import random
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from harness import Result, Target, log

from obd2_testkit.stack.pgbackrest import BackRestRig, migrated, write_samples

NAME = "pitr"
ARCHIVE_TIMEOUT_S = 60
PACE_S = 0.05
RPO_TARGET_S = 75.0
ROWS_PER_BATCH = 500_000


class PacedWriter:
    """Commits one sample every PACE_S until its connection dies; keeps acknowledgement times."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.acknowledged: dict[int, float] = {}
        self.thread = threading.Thread(target=lambda: asyncio.run(self._write()), daemon=True)

    async def _write(self) -> None:
        connection = await asyncpg.connect(self.url)
        seq = 0
        try:
            while True:
                now = time.time()
                await connection.execute(
                    "INSERT INTO samples (device_id, seq, vehicle_id, ts, pid, value) "
                    "VALUES (1, $1, 1, $2, '0C', 1.0)",
                    seq, int(now * 1000),
                )  # fmt: skip
                self.acknowledged[seq] = time.time()
                seq += 1
                await asyncio.sleep(PACE_S)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return  # the server is gone
        finally:
            connection.terminate()


async def _newest_seq(url: str) -> int:
    connection = await asyncpg.connect(url)
    try:
        return int(await connection.fetchval("SELECT coalesce(max(seq), -1) FROM samples"))
    finally:
        await connection.close()


def _restore_latest_and_open(rig: BackRestRig, url: str, repo: int) -> None:
    """Disk loss: the newest backup and every archived WAL segment, as the guide's command."""
    rig.pgbackrest(f"--repo={repo}", "restore")
    rig.cluster.start()
    rig.wait_open(url, 3600)


def recovery_point_trial(tmp: Path, rng: random.Random) -> float:
    rig = BackRestRig.create(tmp)
    try:
        url = migrated(rig)
        rig.backup("full")
        writer = PacedWriter(url)
        writer.thread.start()
        time.sleep(rng.uniform(5, 2 * ARCHIVE_TIMEOUT_S))  # the moment the disk dies
        rig.cluster.wipe()
        writer.thread.join(60)
        _restore_latest_and_open(rig, url, repo=2)
        newest = asyncio.run(_newest_seq(url))
        last = max(writer.acknowledged.values())
        came_back = writer.acknowledged.get(newest, min(writer.acknowledged.values()))
        lost = last - came_back
        log(
            f"pitr: {len(writer.acknowledged)} acknowledged, newest back #{newest}: "
            f"{lost:.1f} s lost"
        )
        return lost
    finally:
        rig.close()


async def _fill(url: str, target_bytes: int) -> int:
    connection = await asyncpg.connect(url)
    rows = 0
    try:
        while await connection.fetchval("SELECT pg_database_size(current_database())") < (
            target_bytes
        ):
            await connection.execute(
                "INSERT INTO samples (device_id, seq, vehicle_id, ts, pid, value) "
                "SELECT 2, g, 1, 1700000000000 + g * 100, "
                "(ARRAY['0C','0D','05','11','04'])[1 + g % 5], random() * 100 "
                "FROM generate_series($1::bigint, $2::bigint) g",
                rows, rows + ROWS_PER_BATCH - 1,
            )  # fmt: skip
            rows += ROWS_PER_BATCH
        return rows
    finally:
        await connection.close()


def recovery_time(tmp: Path, size_bytes: int) -> list[Result]:
    rig = BackRestRig.create(tmp)
    try:
        url = migrated(rig)
        started = time.monotonic()
        rows = asyncio.run(_fill(url, size_bytes))
        log(f"pitr: {rows} samples in {time.monotonic() - started:.0f} s")
        started = time.monotonic()
        rig.pgbackrest("--type=full", "--repo=1", "backup")
        backup_repo1 = time.monotonic() - started
        started = time.monotonic()
        rig.pgbackrest("--type=full", "--repo=2", "backup")
        backup_repo2 = time.monotonic() - started
        time.sleep(1.5)  # the target must lie after the backup's end, to the second
        to_time = datetime.now(UTC).isoformat()
        # Recovery stops at the first commit after the target: without one in the archive,
        # PostgreSQL refuses ("recovery ended before configured recovery target was reached").
        asyncio.run(write_samples(url, range(rows, rows + 10)))
        rig.pgbackrest("check")
        size_mb = size_bytes / 1e6
        results = [
            Result(NAME, f"full backup of {size_mb:.0f} MB into repo1", backup_repo1, "s"),
            Result(NAME, f"full backup of {size_mb:.0f} MB into repo2", backup_repo2, "s"),
        ]
        for repo in (2, 1):
            rig.cluster.wipe()
            started = time.monotonic()
            done = rig.cli("restore", "--to-time", to_time, "--repo", str(repo), "--yes")
            assert done.returncode == 0, done.stderr
            rig.cluster.start()
            rig.wait_open(url, 3600)
            took = time.monotonic() - started
            log(f"pitr: {size_mb:.0f} MB restored from repo{repo} and open in {took:.1f} s")
            results.append(
                Result(
                    NAME,
                    f"restore --to-time of {size_mb:.0f} MB from repo{repo} until open",
                    took,
                    "s",
                    note=f"{rows} samples; repo{repo}"
                    + (" off-site, encrypted, S3 on loopback" if repo == 2 else " local"),
                )
            )
        return results
    finally:
        rig.close()


def run(short: bool) -> list[Result]:
    rng = random.Random()
    trials = 1 if short else 3
    with tempfile.TemporaryDirectory(prefix="obd2-pitr-bench-") as tmp:
        lost = [recovery_point_trial(Path(tmp) / f"rpo-{i}", rng) for i in range(trials)]
        results = [
            Result(
                NAME,
                "recovery point: acknowledged data lost with the disk (worst trial)",
                max(lost),
                "s",
                Target("<=", RPO_TARGET_S),
                note=f"archive_timeout {ARCHIVE_TIMEOUT_S} s; trials: "
                + ", ".join(f"{x:.1f}" for x in lost)
                + f"; median {statistics.median(lost):.1f}",
            )
        ]
        size = 100_000_000 if short else 1_000_000_000
        results += recovery_time(Path(tmp) / "rto", size)
    return results


if __name__ == "__main__":
    import sys

    for result in run(short="--short" in sys.argv):
        print(result)
