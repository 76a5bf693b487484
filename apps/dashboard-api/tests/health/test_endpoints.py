import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from obd2_dashboard.app import create_app
from obd2_dashboard.ops.migrations import head_revision
from obd2_dashboard.settings import Settings
from tests.conftest import REDIS_URL, SESSION_SECRET, Backend, closed_port_url


async def test_healthz_reports_each_dependency(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["db"] == "ok"
    assert body["redis"] in {"ok", "embedded"}
    assert body["version"]
    assert body["git_sha"]


async def test_readyz_checks_migrations(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["migrations"] == "ok"
    assert head_revision()


async def test_request_id_is_echoed_or_generated(client: httpx.AsyncClient) -> None:
    echoed = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    generated = await client.get("/api/v1/vehicles")
    assert len(generated.headers["x-request-id"]) == 32
    forged = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith tab"})
    assert forged.headers["x-request-id"] != "bad id\twith tab"


async def test_metrics_label_routes_by_template(client: httpx.AsyncClient) -> None:
    await client.get("/api/v1/vehicles/12345")
    await client.get("/api/v1/vehicles/67890")
    await client.get("/healthz")
    text = (await client.get("/metrics")).text
    assert 'route="/api/v1/vehicles/{vehicle_id}"' in text
    assert "/vehicles/12345" not in text
    assert 'route="/healthz"' not in text


@asynccontextmanager
async def _serving(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


def _unreachable_database(kind: str, tmp_path: Path) -> str:
    if kind == "postgres":
        return closed_port_url("postgresql")
    return f"sqlite:///{tmp_path / 'no-such-dir' / 'db.sqlite3'}"


async def test_unreachable_database_is_503(
    settings: Settings, backend: Backend, tmp_path: Path
) -> None:
    down = settings.model_copy(
        update={"DATABASE_URL": _unreachable_database(backend.name, tmp_path)}
    )
    before = set(threading.enumerate())
    async with _serving(down) as client:
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
        login = await client.post(
            "/api/v1/auth/login", json={"email": "a@example.com", "password": "whatever"}
        )
    # aiosqlite stops the thread of a failed connection with a message back to this event loop:
    # wait for those threads while the loop still runs.
    for thread in set(threading.enumerate()) - before:
        if "_connection_worker_thread" in thread.name:
            await asyncio.to_thread(thread.join, 30)
    assert health.status_code == 503
    body = health.json()
    assert body["status"] == "error"
    assert body["db"] == "error"
    assert body["redis"] in {"ok", "embedded"}
    assert body["version"]
    assert "db" in body["errors"]
    assert ready.status_code == 503
    assert ready.json()["db"] == "error"
    assert ready.json()["status"] == "not ready"
    # An API call that needs the database is told to retry, not given a 500.
    assert login.status_code == 503
    assert login.json() == {"detail": "the database is unavailable; retry shortly"}
    assert login.headers["Retry-After"]


async def test_unreachable_redis_is_503(settings: Settings, backend: Backend) -> None:
    down = settings.model_copy(update={"REDIS_URL": closed_port_url("redis")})
    async with _serving(down) as client:
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
        login = await client.post(
            "/api/v1/auth/login", json={"email": "a@example.com", "password": "whatever"}
        )
    assert health.status_code == 503
    assert health.json()["redis"] == "error"
    assert health.json()["db"] == "ok"
    assert health.json()["status"] == "error"
    assert ready.status_code == 503
    assert ready.json()["redis"] == "error"
    assert ready.json()["migrations"] == "ok"
    assert login.status_code == 503
    assert "detail" in login.json()
    assert login.headers["Retry-After"]


async def test_unmigrated_database_is_not_ready(
    empty_database: str, redis_prefix: str, tmp_path: Path
) -> None:
    fresh = Settings(
        DATABASE_URL=empty_database,
        REDIS_URL=None if empty_database.startswith("sqlite") else REDIS_URL,
        REDIS_KEY_PREFIX=redis_prefix,
        SESSION_SECRET=SESSION_SECRET,
        DATA_DIR=tmp_path / "var",
    )
    async with _serving(fresh) as client:
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
    assert health.status_code == 200  # alive: the database answers
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "not ready"
    assert body["migrations"] == "pending"
    assert head_revision() in body["errors"]["migrations"]


async def test_metrics_count_requests(client: httpx.AsyncClient) -> None:
    await client.get("/api/v1/vehicles")
    text = (await client.get("/metrics")).text
    assert "obd2_http_requests_total{" in text
    assert 'route="/api/v1/vehicles",status="401"' in text
    assert "obd2_http_request_duration_seconds_bucket{" in text
