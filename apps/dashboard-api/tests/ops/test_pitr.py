"""Point-in-time recovery through pgBackRest, as the guide (doc/ops-backups.md) runs it.

A cluster of the test's own archives into pgBackRest as shipped (infra/pgbackrest), repo1 on its
disk and repo2, encrypted, on an S3-compatible server on loopback (stack.pgbackrest). Samples
are written one commit at a time while the test notes when each was acknowledged; the database
is then destroyed (server killed, data directory deleted) and `obd2-dashboard restore --to-time`
brings it back from the off-site repository.
"""

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from obd2_dashboard.health.repository import WalArchiver, wal_archiver
from obd2_dashboard.kit.db import make_sessionmaker
from obd2_dashboard.ops.errors import CommandError
from obd2_dashboard.ops.pitr import Snapshot, compare_with_live
from obd2_dashboard.settings import async_database_url
from obd2_testkit.stack.pgbackrest import BackRestRig, migrated, stored_seqs, write_samples

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[BackRestRig]:
    rig = BackRestRig.create(tmp_path)
    try:
        yield rig
    finally:
        rig.close()


async def archiver_status(url: str) -> WalArchiver:
    """What /metrics reads of the archiver (health.repository), from the restored cluster."""
    engine = create_async_engine(async_database_url(url))
    try:
        async with make_sessionmaker(engine)() as session:
            status = await wal_archiver(session)
    finally:
        await engine.dispose()
    assert status is not None
    return status


def test_restore_to_time_brings_back_what_was_acknowledged_before_it_and_nothing_after(
    rig: BackRestRig,
) -> None:
    url = migrated(rig)
    rig.backup("full")
    # pgBackRest picks the newest backup that ended before the target, to the second: the
    # writes go on for 2 s after the backup before the time is noted.
    before = asyncio.run(write_samples(url, range(300), until=time.time() + 2))
    noted = time.time()
    after = asyncio.run(write_samples(url, range(before[-1].seq + 1, before[-1].seq + 301)))
    assert before[-1].acknowledged_at < noted < after[0].sent_at
    # Everything written is in both repositories (what archive_timeout does within a minute).
    rig.pgbackrest("check")
    rig.cluster.wipe()

    to_time = datetime.fromtimestamp(noted, UTC).isoformat()
    done = rig.cli("restore", "--to-time", to_time, "--repo", "2", "--yes")
    assert done.returncode == 0, done.stderr
    assert "start PostgreSQL" in done.stdout
    rig.cluster.start()
    rig.wait_open(url)

    restored = asyncio.run(stored_seqs(url))
    assert {w.seq for w in before} <= restored
    assert not restored & {w.seq for w in after}
    # It takes writes again, on a new timeline that pgBackRest archives too, as /metrics says.
    asyncio.run(write_samples(url, range(after[-1].seq + 1, after[-1].seq + 2)))
    rig.pgbackrest("check")
    archiver = asyncio.run(archiver_status(url))
    assert archiver.enabled
    assert archiver.archived_count >= 1
    assert archiver.last_archived_at is not None
    assert archiver.last_archived_at.timestamp() > noted


def test_the_drill_restores_the_off_site_copy_and_finds_the_live_counts(
    rig: BackRestRig, tmp_path: Path
) -> None:
    url = migrated(rig)
    rig.backup("full")
    asyncio.run(write_samples(url, range(50)))
    rig.backup("incr")
    asyncio.run(write_samples(url, range(50, 80)))
    backups = tmp_path / "backups"

    done = rig.cli(
        "restore-drill", "--repo", "2", env={"DATABASE_URL": url, "BACKUP_DIR": str(backups)}
    )

    assert done.returncode == 0, done.stderr
    assert "repo2 restored to restore point" in done.stdout
    assert "newest sample ts" in done.stdout
    status = json.loads((backups / "restore-drill.json").read_text())
    assert status["ok"] is True
    assert status["backup"] == "pgbackrest repo2"
    # The scratch cluster is gone, and the live one never stopped.
    assert asyncio.run(stored_seqs(url)) == set(range(80))


def counted(samples: int, users: int | None, newest: int) -> Snapshot:
    counts = {"public.samples": samples} | ({"public.users": users} if users is not None else {})
    return Snapshot(counts, newest)


def test_the_drill_comparison_fails_on_a_missing_row_or_an_older_newest_sample() -> None:
    live, busy = counted(80, 1, 1_000), counted(90, 1, 1_100)
    compare_with_live("p", 2, live, live, counted(80, 1, 1_000))
    compare_with_live("p", 2, live, busy, counted(85, 1, 1_050))  # writes during the drill
    with pytest.raises(CommandError, match=r"public\.samples 79 \(live 80\)"):
        compare_with_live("p", 2, live, live, counted(79, 1, 1_000))
    with pytest.raises(CommandError, match=r"newest sample ts 999 "):
        compare_with_live("p", 2, live, live, counted(80, 1, 999))
    with pytest.raises(CommandError, match=r"public\.users -1 "):
        compare_with_live("p", 2, live, live, counted(80, None, 1_000))
