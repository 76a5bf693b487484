import asyncio
import os
import subprocess
import time
from collections.abc import Awaitable

from sqlalchemy import func, select

from obd2_dashboard.models import Sample, SampleRollup
from obd2_dashboard.telemetry.retention import DAY_MS, prune_samples
from obd2_testkit.commands import DASHBOARD_CLI
from tests.conftest import World
from tests.telemetry.helpers import drain_outbox


async def _seed(world: World) -> None:
    user = await world.user("old@example.com")
    vehicle = await world.vehicle(user)
    _, token = await world.device(vehicle)
    now = int(time.time() * 1000)
    samples = [
        {"seq": i, "ts": now - (40 - i) * DAY_MS, "pid": "RPM", "value": float(i)}
        for i in range(40)
    ]
    response = await world.client.post(
        "/api/v1/ingest", json={"samples": samples}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    await drain_outbox(world.app)


async def _counts(world: World) -> tuple[int, int]:
    async with world.app.state.obd2.sessionmaker() as session:
        samples = await session.scalar(select(func.count()).select_from(Sample))
        rollups = await session.scalar(select(func.count()).select_from(SampleRollup))
        return int(samples or 0), int(rollups or 0)


async def test_retention_deletes_old_raw_rows_in_batches_and_keeps_rollups(world: World) -> None:
    await _seed(world)
    assert await _counts(world) == (40, 40)
    seen: list[int] = []
    deleted = await prune_samples(
        world.app.state.obd2.sessionmaker, older_than_days=30.5, batch=3, progress=seen.append
    )
    assert deleted == 10
    assert seen[-1] == 10
    assert len(seen) == 4  # batches of 3: 3, 6, 9, 10
    assert await _counts(world) == (30, 40)
    assert await prune_samples(world.app.state.obd2.sessionmaker, older_than_days=30.5) == 0


async def test_prune_samples_command(world: World) -> None:
    await _seed(world)
    settings = world.app.state.obd2.settings
    env = {
        "PATH": os.environ["PATH"],
        "DATABASE_URL": settings.DATABASE_URL,
        "DATA_DIR": str(settings.DATA_DIR),
    }
    cli = DASHBOARD_CLI

    def run(*args: str) -> Awaitable[subprocess.CompletedProcess[str]]:
        # In a thread: this loop runs the app's embedded worker, and a write transaction of
        # its left waiting on a blocked loop would hold SQLite's lock against the command.
        return asyncio.to_thread(
            subprocess.run,
            [cli, "prune-samples", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    dry = await run("--older-than-days", "20.5", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "20 samples older than 20.5 days (dry run)" in dry.stdout
    assert (await _counts(world))[0] == 40
    real = await run("--older-than-days", "20.5")
    assert real.returncode == 0, real.stderr
    assert "deleted 20 samples" in real.stdout
    assert (await _counts(world))[0] == 20
    usage = await run()
    assert usage.returncode == 1
    assert "--older-than-days" in usage.stderr
