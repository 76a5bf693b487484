"""The real Bridge Agent (as its own process) against the real API and the agent's simulated car."""

import asyncio
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from obd2_dashboard.models import Device, Sample
from obd2_testkit.ports import free_port
from tests.conftest import Served, World

pytestmark = pytest.mark.slow

BRIDGE = str(Path(sys.executable).with_name("obd2-bridge"))


async def test_agent_uploads_a_drive_that_lands_in_the_database(
    served: Served, tmp_path: Path
) -> None:
    transport = httpx.ASGITransport(app=served.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        world = World(served.app, client)
        user = await world.user("e2e@example.com")
        vehicle = await world.vehicle(user)
        device_id, token = await world.device(vehicle)
    car_port = free_port()
    config = tmp_path / "bridge.toml"
    config.write_text(
        f'adapter = "socket://127.0.0.1:{car_port}"\napi_url = "{served.url}"\n'
        f'token = "{token}"\nspool = "{tmp_path / "spool.sqlite3"}"\n'
    )
    log = (tmp_path / "agent.log").open("wb")
    car = subprocess.Popen(
        [BRIDGE, "simulate", "--port", str(car_port), "--delay-ms", "5", "--no-engine-off"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    agent = subprocess.Popen([BRIDGE, "run", "--config", str(config)], stdout=log, stderr=log)
    try:
        sessionmaker = served.app.state.obd2.sessionmaker
        stored = 0
        for _ in range(300):
            async with sessionmaker() as session:
                stored = int(
                    await session.scalar(
                        select(func.count())
                        .select_from(Sample)
                        .where(Sample.device_id == device_id)
                    )
                    or 0
                )
                pids = set((await session.execute(select(Sample.pid).distinct())).scalars().all())
            if stored >= 200 and {"RPM", "SPEED"} <= pids:
                break
            await asyncio.sleep(0.1)
        assert stored >= 200, (tmp_path / "agent.log").read_text()[-2000:]
        assert {"RPM", "SPEED"} <= pids
        async with sessionmaker() as session:
            rpm = (
                (await session.execute(select(Sample.value).where(Sample.pid == "RPM").limit(200)))
                .scalars()
                .all()
            )
            device = await session.get(Device, device_id)
        assert all(0 <= value <= 8000 for value in rpm)
        assert device is not None
        assert device.agent_version
    finally:
        # Waited for off the event loop: the agent's last flush talks to this loop's server.
        agent.terminate()
        await asyncio.to_thread(agent.wait, 20)
        car.terminate()
        await asyncio.to_thread(car.wait, 10)
        log.close()
