import time
from collections.abc import AsyncIterator

import httpx
import pytest

from obd2_dashboard.app import create_app
from obd2_dashboard.settings import Settings
from tests.conftest import SESSION_SECRET
from tests.processes import free_port


@pytest.fixture
async def orphan_client(tmp_path: object) -> AsyncIterator[httpx.AsyncClient]:
    """An API whose PostgreSQL does not answer (nothing listens on its port)."""
    settings = Settings(
        DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/gone",
        SESSION_SECRET=SESSION_SECRET,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client


async def test_ingest_is_503_with_retry_after_when_the_database_is_down(
    orphan_client: httpx.AsyncClient,
) -> None:
    response = await orphan_client.post(
        "/api/v1/ingest",
        json={"samples": [{"seq": 1, "ts": int(time.time() * 1000), "pid": "RPM", "value": 1.0}]},
        headers={"Authorization": "Bearer obd2d_" + "a" * 43},
    )
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) > 0
    assert "database" in response.json()["detail"]
    login = await orphan_client.post(
        "/api/v1/auth/login", json={"email": "a@example.com", "password": "whatever1"}
    )
    assert login.status_code == 503
    health = await orphan_client.get("/healthz")
    assert health.status_code == 503
    assert health.json()["db"] == "error"
