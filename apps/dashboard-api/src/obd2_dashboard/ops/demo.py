"""``obd2-dashboard demo``: the whole product on embedded defaults, with a login to try it.

Before it serves, the demo car gets the last 30 days of its drives (``ops.demo_history``, through
the ingest path), so that history, trips and trouble codes show something from the first visit.
The live feed is the real Bridge Agent, run as its own process (the server never imports it)
against the agent's simulated car driving the same model, so the demo dashboard moves like a
drive: parked with the engine off, then round town and the motorway. The agent reads the car,
not a GPS: a thread plays the driver's phone, posting the car's position to the ingest endpoint
as a phone logger does, from the same model and the same start, so live trips have a track.
"""

import asyncio
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from sqlalchemy import select

from obd2_dashboard.auth.service import create_user, user_by_email
from obd2_dashboard.devices.service import create_device_for, reissue_device
from obd2_dashboard.dtcs.service import active_codes
from obd2_dashboard.kit.db import make_engine, make_sessionmaker, utcnow
from obd2_dashboard.kit.security import hash_password
from obd2_dashboard.models import Device
from obd2_dashboard.ops.commands import migrated_session, prepare_embedded_storage
from obd2_dashboard.ops.demo_history import DEMO_SEED, HISTORY_DAYS, seed_history
from obd2_dashboard.ops.errors import EXIT_OK
from obd2_dashboard.ops.migrations import upgrade_head
from obd2_dashboard.ops.serve import serve
from obd2_dashboard.settings import Settings
from obd2_dashboard.vehicles.schemas import VehicleCreate
from obd2_dashboard.vehicles.service import create_vehicle, owned_vehicle_named
from obd2_protocol import demo_car

DEMO_EMAIL = "demo@example.com"
DEMO_VEHICLE = "Demo car"
DEMO_VIN = "1HGCM82633A004352"
DEMO_DEVICE = "Demo agent"
DEMO_PHONE = "Demo phone"
GPS_EVERY_S = 2.0


async def _ensure_demo_data(settings: Settings, password: str) -> tuple[int, str, str]:
    """Demo user (with a fresh password), vehicle, and fresh device tokens for the agent and
    the phone."""
    async with migrated_session(settings) as session:
        user = await user_by_email(session, DEMO_EMAIL)
        if user is None:
            user = await create_user(session, DEMO_EMAIL, password, is_admin=True)
        else:
            user.password_hash = hash_password(password)
        vehicle = await owned_vehicle_named(session, user, DEMO_VEHICLE)
        if vehicle is None:
            vehicle = await create_vehicle(
                session, user, VehicleCreate(name=DEMO_VEHICLE, vin=DEMO_VIN)
            )
        # The previous run's token was printed nowhere: retire it and make one for this run.
        old = await session.execute(
            select(Device).where(
                Device.vehicle_id == vehicle.id,
                Device.name == DEMO_DEVICE,
                Device.revoked_at.is_(None),
            )
        )
        for device in old.scalars():
            device.revoked_at = utcnow()
        created = await create_device_for(session, vehicle, DEMO_DEVICE)
        phone = await reissue_device(session, vehicle, DEMO_PHONE)
        return vehicle.id, created.token, phone.token


async def _seed_history(settings: Settings, vehicle_id: int) -> list[str]:
    """The month of drives; returns the trouble codes the car has stored, for the live car."""
    engine = make_engine(settings.database_url)
    try:
        maker = make_sessionmaker(engine)
        report = await seed_history(maker, vehicle_id)
        print(
            f"demo: {report.drives} drives of the last {HISTORY_DAYS} days, "
            f"{report.stored} samples stored ({report.duplicates} stored before) "
            f"in {report.seconds:.1f} s",
            file=sys.stderr,
            flush=True,
        )
        async with maker() as session:
            return await active_codes(session, vehicle_id, "stored")
    finally:
        await engine.dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bridge_command() -> str | None:
    sibling = Path(sys.executable).with_name("obd2-bridge")
    return str(sibling) if sibling.exists() else shutil.which("obd2-bridge")


class PhoneGps(threading.Thread):
    """The driver's phone: a GPS fix every 2 s while the engine runs, posted to the ingest
    endpoint as a phone logger (Torque Pro and the like) posts it. It drives the demo car's
    model from the same start as the simulated car, so its fixes follow the car's speed."""

    def __init__(self, api_url: str, token: str, start_ms: int) -> None:
        super().__init__(name="demo-phone-gps", daemon=True)
        self.api_url = api_url
        self.token = token
        self.start_ms = start_ms
        self.stopping = threading.Event()

    def run(self) -> None:
        car = demo_car.LiveCar(DEMO_SEED, self.start_ms)
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.api_url, timeout=10) as client:
            while not self.stopping.wait(GPS_EVERY_S):
                now_ms = int(time.time() * 1000)
                reading = car.at((now_ms - self.start_ms) / 1000)
                if not reading.engine_on:
                    continue
                fixes = (("GPS_LAT", reading.lat), ("GPS_LON", reading.lon))
                body = {
                    "samples": [
                        {"seq": now_ms * 2 + slot, "ts": now_ms, "pid": pid, "value": round(v, 7)}
                        for slot, (pid, v) in enumerate(fixes)
                    ]
                }
                try:
                    client.post("/api/v1/ingest", json=body, headers=headers)
                except httpx.HTTPError:
                    continue  # the server is not listening yet, or going away

    def stop(self) -> None:
        self.stopping.set()
        self.join(15)


def _start_agent(
    settings: Settings, api_url: str, token: str, stored_dtcs: list[str], start_ms: int
) -> list[subprocess.Popen[bytes]]:
    bridge = _bridge_command()
    if bridge is None:
        print("demo: obd2-bridge is not installed: no live feed", file=sys.stderr)
        return []
    car_port = _free_port()
    config = settings.DATA_DIR / "demo-bridge.toml"
    # The token goes in a 0600 file, not on a command line every local user can read.
    config.write_text(
        f'adapter = "socket://127.0.0.1:{car_port}"\n'
        f'api_url = "{api_url}"\n'
        f'token = "{token}"\n'
        f'spool = "{settings.DATA_DIR / "demo-spool.sqlite3"}"\n'
        # The car's values change every half second; the slow PIDs every few seconds.
        'fast_pids = ["RPM", "SPEED", "THROTTLE_POS", "ENGINE_LOAD", "FUEL_RATE"]\n'
        'slow_pids = ["COOLANT_TEMP", "INTAKE_TEMP", "OIL_TEMP", "FUEL_LEVEL", "MAF", '
        '"INTAKE_PRESSURE", "CONTROL_MODULE_VOLTAGE", "AMBIANT_AIR_TEMP"]\n'
        "fast_interval_s = 0.5\n"
        "slow_interval_s = 5.0\n"
        # Parked between drives for a few minutes: notice the engine start within seconds.
        "heartbeat_s = 5.0\n"
        "engine_probe_s = 20.0\n"
        "dtc_interval_s = 30.0\n"
    )
    config.chmod(0o600)
    log = (settings.DATA_DIR / "demo-agent.log").open("ab")
    # The same car as the history's, going on with the trouble codes the history left it.
    simulate = [bridge, "simulate", "--port", str(car_port), "--delay-ms", "15"]
    simulate += ["--realistic", "--seed", str(DEMO_SEED), "--start-ms", str(start_ms)]
    for code in stored_dtcs:
        simulate += ["--dtc", code]
    car = subprocess.Popen(simulate, stdout=log, stderr=subprocess.STDOUT)
    agent = subprocess.Popen(
        [bridge, "run", "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    return [agent, car]


def run_demo(settings: Settings, *, host: str, port: int, history: bool = True) -> int:
    settings.DATABASE_URL = None
    settings.REDIS_URL = None
    settings.DATA_DIR = settings.DATA_DIR / "demo"
    prepare_embedded_storage(settings)
    upgrade_head(settings.database_url)
    password = secrets.token_urlsafe(18)  # 24 characters: auth.passwords asks for 15
    vehicle_id, token, phone_token = asyncio.run(_ensure_demo_data(settings, password))
    stored_dtcs: list[str] = []
    if history:
        print(
            f"demo: storing the demo car's drives of the last {HISTORY_DAYS} days …",
            file=sys.stderr,
            flush=True,
        )
        stored_dtcs = asyncio.run(_seed_history(settings, vehicle_id))
    api_url = f"http://127.0.0.1:{port}"
    start_ms = int(time.time() * 1000)
    children = _start_agent(settings, api_url, token, stored_dtcs, start_ms)
    phone = PhoneGps(api_url, phone_token, start_ms)
    if children:
        phone.start()
    print(f"obd2-dashboard demo: http://{host}:{port}/", flush=True)
    print(f"login: {DEMO_EMAIL}", flush=True)
    print(f"password: {password}", flush=True)
    try:
        serve(settings, host=host, port=port)
    finally:
        if phone.is_alive():
            phone.stop()
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
    return EXIT_OK
