import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection

from obd2_dashboard.kit import db
from obd2_dashboard.kit.db import driver_connection


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_driver_connection_statements_belong_to_the_session_transaction(
    app: FastAPI,
) -> None:
    state = app.state.obd2
    async with state.sessionmaker() as session:
        driver = await driver_connection(session)
        assert driver.is_in_transaction()
        await driver.execute(
            "INSERT INTO ingest_outbox (vehicle_id, buckets, created_at) VALUES (1, 'RPM:0', now())"
        )
        await session.rollback()
    async with state.sessionmaker() as session:
        count = await session.scalar(text("SELECT count(*) FROM ingest_outbox"))
    assert count == 0


async def _kill_other_backends(app: FastAPI) -> None:
    async with app.state.obd2.sessionmaker() as session:
        await session.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_an_idle_connection_the_server_dropped_is_replaced_at_checkout(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = app.state.obd2
    async with state.sessionmaker() as first, state.sessionmaker() as second:
        # Two connections in the pool; the second one kills the first's backend.
        await first.execute(text("SELECT 1"))
        await second.execute(text("SELECT 1"))
    await _kill_other_backends(app)
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)
    for _ in range(3):
        async with state.sessionmaker() as session:
            assert await session.scalar(text("SELECT 1")) == 1


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_a_connection_used_a_moment_ago_is_not_pinged(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = app.state.obd2
    async with state.sessionmaker() as session:
        await session.execute(text("SELECT 1"))
    pings: list[int] = []
    original = AsyncAdapt_asyncpg_connection.ping

    def counted_ping(self: AsyncAdapt_asyncpg_connection) -> None:
        pings.append(1)
        original(self)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(AsyncAdapt_asyncpg_connection, "ping", counted_ping)
    async with state.sessionmaker() as session:
        await session.execute(text("SELECT 2"))
    assert pings == []
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)
    async with state.sessionmaker() as session:
        await session.execute(text("SELECT 3"))
    assert pings == [1]
