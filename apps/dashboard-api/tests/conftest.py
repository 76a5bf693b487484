"""Fixtures for the server's tests: real databases and a real Redis, uniquely named per run.

API tests run on both backends: ``sqlite`` (embedded database and in-process broker) and
``postgres`` (the machine's PostgreSQL and Redis). A test that asks for ``client`` runs twice.
"""

import asyncio
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from redis import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from obd2_dashboard.app import create_app
from obd2_dashboard.auth.service import create_user
from obd2_dashboard.devices.service import create_device_for
from obd2_dashboard.models import Base, Vehicle
from obd2_dashboard.ops.migrations import upgrade_head
from obd2_dashboard.ops.redis_bootstrap import bootstrap
from obd2_dashboard.settings import Settings, async_database_url
from obd2_testkit.commands import DASHBOARD_CLI
from obd2_testkit.ports import closed_port_url, free_port

__all__ = ["closed_port_url", "free_port"]

PG_ADMIN_URL = os.environ.get("OBD2_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("OBD2_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SESSION_SECRET = "test-secret-" + "x" * 40
PASSWORD = "correct horse battery"


def _pg_url(database: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{database}"


async def _admin_execute(sql: str) -> None:
    engine = create_async_engine(async_database_url(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(sql))
    finally:
        await engine.dispose()


@dataclass(frozen=True, slots=True)
class Backend:
    name: str
    database_url: str
    redis_url: str | None


def create_pg_database() -> str:
    name = f"obd2_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin_execute(f'CREATE DATABASE "{name}"'))
    return name


def drop_pg_database(name: str) -> None:
    asyncio.run(_admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("db") / "test.sqlite3"
        url = f"sqlite:///{path}"
        upgrade_head(async_database_url(url))
        yield Backend("sqlite", url, None)
        return
    name = create_pg_database()
    try:
        url = _pg_url(name)
        upgrade_head(async_database_url(url))
        yield Backend("postgres", url, REDIS_URL)
    finally:
        drop_pg_database(name)


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a database of its own with no tables at all (not migrated)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    name = create_pg_database()
    try:
        yield _pg_url(name)
    finally:
        drop_pg_database(name)


CLI = Path(DASHBOARD_CLI)


def clean_env(**variables: str) -> dict[str, str]:
    """An environment with nothing of the caller's settings: PATH, HOME and ``variables``."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/")}
    env.update(variables)
    return env


def run_cli(
    *args: str, env: dict[str, str], stdin: str = "", cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), *args],
        input=stdin,
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    prefix = f"obd2test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    delete_redis_keys(prefix)


def delete_redis_keys(prefix: str) -> None:
    """Removes what a test left under its key prefix on the machine's Redis."""
    client = Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def settings(backend: Backend, redis_prefix: str, tmp_path: Path) -> Settings:
    return Settings(
        DATABASE_URL=backend.database_url,
        REDIS_URL=backend.redis_url,
        REDIS_KEY_PREFIX=redis_prefix,
        SESSION_SECRET=SESSION_SECRET,
        DATA_DIR=tmp_path / "var",
        BACKUP_DIR=tmp_path / "backups",
    )


async def _empty_tables(app: FastAPI) -> None:
    engine = app.state.obd2.engine
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    async with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            await connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                await connection.execute(text(f"DELETE FROM {table}"))


async def _prepare(application: FastAPI) -> None:
    await _empty_tables(application)
    # What a deploy does before starting the API (the embedded broker does it by itself).
    await bootstrap(application.state.obd2.broker)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        await _prepare(application)
        yield application


@dataclass(frozen=True, slots=True)
class Served:
    """The app behind a real uvicorn on a loopback port (streaming responses, WebSockets)."""

    app: FastAPI
    url: str

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http")


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[Served]:
    application = create_app(settings)
    config = uvicorn.Config(
        application,
        host="127.0.0.1",
        port=0,
        log_config=None,
        lifespan="on",
        ws="websockets-sansio",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # the server failed to start: its error is the test's
        await asyncio.sleep(0.01)
    try:
        port = server.servers[0].sockets[0].getsockname()[1]
        await _prepare(application)
        yield Served(application, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@dataclass(slots=True)
class World:
    """Makes users, vehicles and devices straight through the services, and signs in."""

    app: FastAPI
    client: httpx.AsyncClient
    signed_in: list[httpx.AsyncClient] = field(default_factory=list)

    async def user(self, email: str, *, admin: bool = False) -> int:
        async with self.app.state.obd2.sessionmaker() as session:
            user = await create_user(session, email, PASSWORD, is_admin=admin)
            await session.commit()
            return user.id

    async def vehicle(self, owner_id: int, name: str = "Car", vin: str | None = None) -> int:
        async with self.app.state.obd2.sessionmaker() as session:
            vehicle = Vehicle(owner_id=owner_id, name=name, vin=vin)
            session.add(vehicle)
            await session.commit()
            return vehicle.id

    async def device(self, vehicle_id: int, name: str = "pi") -> tuple[int, str]:
        async with self.app.state.obd2.sessionmaker() as session:
            vehicle = await session.get(Vehicle, vehicle_id)
            assert vehicle is not None
            created = await create_device_for(session, vehicle, name)
            await session.commit()
            return created.device.id, created.token

    async def login(self, email: str, password: str = PASSWORD) -> httpx.AsyncClient:
        """A client of its own, signed in as ``email``, sending the CSRF header on writes."""
        transport = httpx.ASGITransport(app=self.app, client=(f"198.51.100.{len(email)}", 40000))
        client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        self.signed_in.append(client)
        response = await client.post(
            "/api/v1/auth/login", json={"email": email, "password": password}
        )
        assert response.status_code == 200, response.text
        client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        return client

    async def close(self) -> None:
        """Closes every client ``login`` handed out."""
        for client in self.signed_in:
            await client.aclose()


@pytest.fixture
async def world(app: FastAPI, client: httpx.AsyncClient) -> AsyncIterator[World]:
    made = World(app, client)
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture
async def alice(world: World) -> AsyncIterator[httpx.AsyncClient]:
    await world.user("alice@example.com")
    signed_in = await world.login("alice@example.com")
    try:
        yield signed_in
    finally:
        await signed_in.aclose()
