"""Any API process serves any vehicle's live stream: fan-out goes through Redis."""

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from obd2_dashboard.ops.migrations import upgrade_head
from obd2_dashboard.settings import async_database_url
from tests.conftest import REDIS_URL, SESSION_SECRET, _pg_url, create_pg_database, drop_pg_database
from tests.live.sse import next_event, sse_events
from tests.processes import seed_device, stack

pytestmark = pytest.mark.slow


@pytest.fixture
def pg_url() -> Iterator[str]:
    name = create_pg_database()
    url = _pg_url(name)
    upgrade_head(async_database_url(url))
    try:
        yield url
    finally:
        drop_pg_database(name)


async def test_sse_on_one_process_sees_ingest_through_another(
    pg_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    vehicle, token = await seed_device(pg_url, "two@example.com")
    now = int(time.time() * 1000)
    env = {
        "DATABASE_URL": pg_url,
        "REDIS_URL": REDIS_URL,
        "REDIS_KEY_PREFIX": redis_prefix,
        "SESSION_SECRET": SESSION_SECRET,
    }
    with stack(tmp_path, env) as procs:
        _, first = procs.serve()
        _, second = procs.serve()
        async with httpx.AsyncClient(base_url=second, timeout=10) as viewer:
            login = await viewer.post(
                "/api/v1/auth/login",
                json={"email": "two@example.com", "password": "correct horse battery"},
            )
            assert login.status_code == 200
            async with viewer.stream("GET", f"/api/v1/streams/vehicles/{vehicle}") as response:
                events = sse_events(response)
                await next_event(events, "comment")
                async with httpx.AsyncClient(base_url=first) as agent:
                    ingest = await agent.post(
                        "/api/v1/ingest",
                        json={"samples": [{"seq": 1, "ts": now, "pid": "RPM", "value": 3000.0}]},
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    assert ingest.status_code == 200
                event = await next_event(events, "sample")
                assert event.json() == {
                    "seq": 1,
                    "ts": now,
                    "pid": "RPM",
                    "value": 3000.0,
                }
