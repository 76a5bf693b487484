import pytest
from fastapi import FastAPI
from sqlalchemy import text

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
