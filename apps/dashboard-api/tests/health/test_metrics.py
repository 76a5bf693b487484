import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from redis import Redis

from obd2_dashboard.ops.backup import DRILL_STATUS_FILE
from obd2_dashboard.ops.migrations import upgrade_head
from obd2_dashboard.settings import Settings, async_database_url
from obd2_testkit.commands import DASHBOARD_CLI
from obd2_testkit.ports import free_port
from tests.conftest import REDIS_URL, Backend, _pg_url, create_pg_database, drop_pg_database

CLI = DASHBOARD_CLI


def sample(text: str, name: str, labels: str = "") -> float:
    """The value of one sample line of a Prometheus text exposition."""
    wanted = f"{name}{{{labels}}}" if labels else name
    values = [line.split()[-1] for line in text.splitlines() if line.split(" ")[0] == wanted]
    assert len(values) == 1, (wanted, values)
    return float(values[0])


async def test_metrics_expose_readiness_and_backup_ages(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    empty = (await client.get("/metrics")).text
    assert sample(empty, "obd2_ready") == 1.0
    assert sample(empty, "obd2_dependency_up", 'dependency="migrations"') == 1.0
    assert sample(empty, "obd2_backup_newest_verified_timestamp_seconds") == 0.0
    assert sample(empty, "obd2_restore_drill_last_success_timestamp_seconds") == 0.0

    created = datetime(2026, 11, 20, 3, 15, tzinfo=UTC)
    backups = settings.BACKUP_DIR
    backups.mkdir(parents=True)
    dump = backups / "obd2-dashboard-20261120T031500Z-rev.r-rel.x.dump"
    dump.write_bytes(b"x")
    manifest = {
        "file": dump.name,
        "created_at": created.isoformat(),
        "revision": "r",
        "release": "x",
        "pre_migration": False,
        "sha256": "0" * 64,
        "size_bytes": 1,
        "tables": {},
    }
    (backups / f"{dump.name}.json").write_text(json.dumps(manifest))
    # An unfinished dump is no backup.
    (backups / "obd2-dashboard-20261125T031500Z-rev.r-rel.x.dump.partial").write_bytes(b"x")
    (backups / DRILL_STATUS_FILE).write_text(
        json.dumps({"last_run": 1000.0, "last_success": 900.0, "ok": False})
    )
    text = (await client.get("/metrics")).text
    assert sample(text, "obd2_backup_newest_verified_timestamp_seconds") == created.timestamp()
    assert sample(text, "obd2_backup_verified_count") == 1.0
    assert sample(text, "obd2_restore_drill_last_success_timestamp_seconds") == 900.0
    assert sample(text, "obd2_restore_drill_last_run_ok") == 0.0


async def test_metrics_say_whether_wal_is_archived(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    text = (await client.get("/metrics")).text
    if not (settings.DATABASE_URL or "").startswith("postgresql"):  # SQLite: no WAL archive
        assert "obd2_wal_" not in text
        return
    # The session's PostgreSQL does not archive (the pgBackRest tests make a cluster that does:
    # tests/ops/test_pitr.py).
    assert sample(text, "obd2_wal_archiving_enabled") == 0.0
    assert sample(text, "obd2_wal_archive_failed_count") == 0.0


RECORD = textwrap.dedent(
    """
    import sys
    from obd2_dashboard.kit.http import HTTP_REQUESTS
    for _ in range(int(sys.argv[1])):
        HTTP_REQUESTS.labels("GET", "/api/v1/x", "200").inc()
    """
)
RENDER = "from obd2_dashboard.kit.metrics import render; print(render().decode())"


def test_metrics_of_several_processes_are_summed(tmp_path: Path) -> None:
    env = os.environ | {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for count in ("3", "4"):
        subprocess.run([sys.executable, "-c", RECORD, count], env=env, check=True, timeout=60)
    assert len(list(tmp_path.glob("counter_*.db"))) == 2
    out = subprocess.run(
        [sys.executable, "-c", RENDER],
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    ).stdout
    labels = 'method="GET",route="/api/v1/x",status="200"'
    assert sample(out, "obd2_http_requests_total", labels) == 7.0


@pytest.fixture
def pg_database() -> Iterator[str]:
    name = create_pg_database()
    try:
        upgrade_head(async_database_url(_pg_url(name)))
        yield name
    finally:
        drop_pg_database(name)


def test_serve_with_workers_sums_every_worker_in_metrics(
    pg_database: str, tmp_path: Path, redis_prefix: str
) -> None:
    port = free_port()
    prefix = redis_prefix
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"} | {
        "DATABASE_URL": _pg_url(pg_database),
        "REDIS_URL": REDIS_URL,
        "REDIS_KEY_PREFIX": prefix,
        "DATA_DIR": str(tmp_path / "var"),
        "BACKUP_DIR": str(tmp_path / "backups"),
    }
    stale = tmp_path / "var" / "prometheus-multiproc"
    stale.mkdir(parents=True)
    (stale / "counter_999999.db").write_bytes(b"left by an earlier start")
    # What a deploy does before it starts the API.
    subprocess.run([CLI, "redis-bootstrap"], env=env, check=True, capture_output=True, timeout=60)
    log = tmp_path / "server.log"
    with log.open("w") as sink:
        server = subprocess.Popen(
            [CLI, "serve", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, log.read_text()
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not answer within 90 s"
            time.sleep(0.3)
        requests = 24
        for _ in range(requests):
            # A new connection each time, so that both workers take some.
            assert httpx.get(f"{base}/api/v1/vehicles", timeout=10).status_code == 401
        text = httpx.get(f"{base}/metrics", timeout=10).text
        labels = 'method="GET",route="/api/v1/vehicles",status="401"'
        assert sample(text, "obd2_http_requests_total", labels) == requests
        assert not (stale / "counter_999999.db").exists()
        assert sample(text, "obd2_ready") == 1.0
    finally:
        server.terminate()
        server.wait(timeout=30)
        client = Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()


def test_workers_need_redis(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}}
    env["DATA_DIR"] = str(tmp_path)
    refused = subprocess.run(
        [CLI, "serve", "--workers", "2", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 1
    assert "REDIS_URL" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


async def test_metrics_report_postgres_wal_archiving_and_nothing_on_sqlite(
    client: httpx.AsyncClient, settings: Settings, backend: Backend
) -> None:
    text = (await client.get("/metrics")).text
    if backend.name == "sqlite":
        assert "obd2_wal_" not in text
        return
    read = (
        "SELECT current_setting('archive_mode'), archived_count, failed_count FROM pg_stat_archiver"
    )
    listed = subprocess.run(
        ["psql", "-X", "-tA", "-F", " ", backend.database_url, "-c", read],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.split()  # fmt: skip
    mode, archived, failed = listed[0], int(listed[1]), int(listed[2])
    assert sample(text, "obd2_wal_archiving_enabled") == (0.0 if mode == "off" else 1.0)
    assert sample(text, "obd2_wal_archived_count") >= archived
    assert sample(text, "obd2_wal_archive_failed_count") >= failed
    # Never archived on a server without archive_mode: the rule compares these two.
    if mode == "off":
        assert sample(text, "obd2_wal_last_archived_timestamp_seconds") == 0.0
        assert sample(text, "obd2_wal_last_failed_timestamp_seconds") == 0.0
