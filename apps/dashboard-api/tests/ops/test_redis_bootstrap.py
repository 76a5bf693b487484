import os
import subprocess

import httpx
import pytest
from redis import Redis

from obd2_dashboard.ops.redis_bootstrap import REDIS_SCHEMA_VERSION, SCHEMA_VERSION_KEY
from obd2_dashboard.telemetry.streams import WORK_GROUP, WORK_STREAM
from obd2_testkit.commands import DASHBOARD_CLI
from tests.conftest import REDIS_URL

CLI = DASHBOARD_CLI


def _bootstrap(prefix: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ["PATH"],
        "REDIS_URL": REDIS_URL,
        "REDIS_KEY_PREFIX": prefix,
        "DATABASE_URL": "sqlite:////nonexistent/unused.sqlite3",
    }
    return subprocess.run(
        [CLI, "redis-bootstrap"], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def _snapshot(redis: Redis, prefix: str) -> dict[str, object]:
    keys = sorted(k.decode() for k in redis.scan_iter(match=f"{prefix}*"))
    return {
        "keys": keys,
        "version": redis.get(f"{prefix}{SCHEMA_VERSION_KEY}"),
        "groups": [g["name"] for g in redis.xinfo_groups(f"{prefix}{WORK_STREAM}")],
        "length": redis.xlen(f"{prefix}{WORK_STREAM}"),
    }


def test_redis_bootstrap_is_idempotent_and_deletes_nothing(redis_prefix: str) -> None:
    redis = Redis.from_url(REDIS_URL)
    try:
        redis.set(f"{redis_prefix}operator-key", "keep me")
        first = _bootstrap(redis_prefix)
        assert first.returncode == 0, first.stderr
        assert f"{WORK_STREAM}/{WORK_GROUP}" in first.stderr
        redis.xadd(f"{redis_prefix}{WORK_STREAM}", {"outbox": "1"})
        before = _snapshot(redis, redis_prefix)
        assert before["version"] == str(REDIS_SCHEMA_VERSION).encode()
        second = _bootstrap(redis_prefix)
        assert second.returncode == 0, second.stderr
        assert "nothing (all present)" in second.stderr
        assert _snapshot(redis, redis_prefix) == before
        assert redis.get(f"{redis_prefix}operator-key") == b"keep me"
    finally:
        redis.close()


def test_redis_bootstrap_refuses_a_newer_schema(redis_prefix: str) -> None:
    redis = Redis.from_url(REDIS_URL)
    try:
        redis.set(f"{redis_prefix}{SCHEMA_VERSION_KEY}", str(REDIS_SCHEMA_VERSION + 1))
        result = _bootstrap(redis_prefix)
        assert result.returncode == 1
        assert "newer" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    finally:
        redis.close()


def test_redis_bootstrap_says_when_redis_is_down() -> None:
    env = {"PATH": os.environ["PATH"], "REDIS_URL": "redis://127.0.0.1:9/0"}
    result = subprocess.run(
        [CLI, "redis-bootstrap"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    assert "not answering" in result.stderr


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_readyz_fails_until_redis_is_bootstrapped(
    client: httpx.AsyncClient, redis_prefix: str
) -> None:
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    redis = Redis.from_url(REDIS_URL)
    try:
        redis.delete(f"{redis_prefix}{SCHEMA_VERSION_KEY}")
    finally:
        redis.close()
    missing = await client.get("/readyz")
    assert missing.status_code == 503
    body = missing.json()
    assert body["redis_schema"] == "missing"
    assert "redis-bootstrap" in body["errors"]["redis_schema"]
