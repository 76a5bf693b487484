"""``obd2-dashboard demo``: the whole product on embedded defaults, with a login to try it."""

import asyncio
import secrets

from obd2_dashboard.auth.repository import UserRepository
from obd2_dashboard.auth.service import create_user
from obd2_dashboard.cli import EXIT_OK
from obd2_dashboard.kit.security import hash_password
from obd2_dashboard.models import Vehicle
from obd2_dashboard.ops.commands import migrated_session, prepare_embedded_storage
from obd2_dashboard.ops.migrations import upgrade_head
from obd2_dashboard.ops.serve import serve
from obd2_dashboard.settings import Settings
from obd2_dashboard.vehicles.repository import VehicleRepository

DEMO_EMAIL = "demo@example.com"
DEMO_VEHICLE = "Demo car"
DEMO_VIN = "1HGCM82633A004352"


async def _ensure_demo_data(settings: Settings, password: str) -> int:
    async with migrated_session(settings) as session:
        users = UserRepository(session)
        user = await users.get_by_email(DEMO_EMAIL)
        if user is None:
            user = await create_user(session, DEMO_EMAIL, password, is_admin=True)
        else:
            user.password_hash = hash_password(password)
        vehicles = VehicleRepository(session)
        owned = await vehicles.list_owned(user.id)
        vehicle = next((v for v in owned if v.name == DEMO_VEHICLE), None)
        if vehicle is None:
            vehicle = await vehicles.add(Vehicle(owner_id=user.id, name=DEMO_VEHICLE, vin=DEMO_VIN))
        return vehicle.id


def run_demo(settings: Settings, *, host: str, port: int) -> int:
    settings.DATABASE_URL = None
    settings.REDIS_URL = None
    settings.DATA_DIR = settings.DATA_DIR / "demo"
    prepare_embedded_storage(settings)
    upgrade_head(settings.database_url)
    password = secrets.token_urlsafe(12)
    asyncio.run(_ensure_demo_data(settings, password))
    print(f"obd2-dashboard demo: http://{host}:{port}/", flush=True)
    print(f"login: {DEMO_EMAIL}", flush=True)
    print(f"password: {password}", flush=True)
    serve(settings, host=host, port=port)
    return EXIT_OK
