"""A vehicle with a device and a signed-in owner on an app whose worker the test drives itself."""

import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text

from obd2_dashboard.app import create_app
from obd2_dashboard.kit.db import session_scope
from obd2_dashboard.models import Alert, AlertDelivery
from obd2_dashboard.ops.redis_bootstrap import bootstrap
from obd2_dashboard.settings import Settings
from obd2_dashboard.telemetry.worker import process_outbox
from tests.conftest import World, _empty_tables


@pytest.fixture
async def quiet_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The app without its in-process worker: the test runs the worker's steps itself."""
    settings.EMBEDDED_WORKER = False
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        await _empty_tables(application)
        await bootstrap(application.state.obd2.broker)
        yield application


@dataclass
class Car:
    app: FastAPI
    client: httpx.AsyncClient
    owner: httpx.AsyncClient
    vehicle_id: int
    device_id: int
    token: str
    seq: int = 0

    async def send(self, samples: Sequence[tuple[int, str, float]]) -> list[dict[str, object]]:
        """Ingests (ts, pid, value) samples as one batch, each with a fresh seq."""
        body: list[dict[str, object]] = []
        for ts, pid, value in samples:
            self.seq += 1
            body.append({"seq": self.seq, "ts": ts, "pid": pid, "value": value})
        await self.post(body)
        return body

    async def post(self, body: list[dict[str, object]]) -> dict[str, int]:
        response = await self.client.post(
            "/api/v1/ingest",
            json={"samples": body},
            headers={"Authorization": f"Bearer {self.token}"},
        )
        assert response.status_code == 200, response.text
        result: dict[str, int] = response.json()
        return result

    async def work(self) -> None:
        """What the worker does for every stored batch (rollups, then alert evaluation)."""
        async with session_scope(self.app.state.obd2.sessionmaker) as session:
            rows = await session.execute(text("SELECT id FROM ingest_outbox"))
            await process_outbox(session, [int(r[0]) for r in rows])

    async def alerts(self) -> list[Alert]:
        async with self.app.state.obd2.sessionmaker() as session:
            result = await session.execute(
                select(Alert).where(Alert.vehicle_id == self.vehicle_id).order_by(Alert.id)
            )
            return list(result.scalars().all())

    async def deliveries(self) -> list[AlertDelivery]:
        async with self.app.state.obd2.sessionmaker() as session:
            result = await session.execute(select(AlertDelivery).order_by(AlertDelivery.id))
            return list(result.scalars().all())

    async def rule(self, **fields: object) -> dict[str, object]:
        response = await self.owner.post(
            f"/api/v1/vehicles/{self.vehicle_id}/alert-rules", json={"name": "rule", **fields}
        )
        assert response.status_code == 201, response.text
        rule: dict[str, object] = response.json()
        return rule


@pytest.fixture
async def car(quiet_app: FastAPI) -> AsyncIterator[Car]:
    transport = httpx.ASGITransport(app=quiet_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        world = World(quiet_app, client)
        user = await world.user("owner@example.com")
        vehicle = await world.vehicle(user, "Alert car")
        device, token = await world.device(vehicle)
        owner = await world.login("owner@example.com")
        try:
            yield Car(quiet_app, client, owner, vehicle, device, token)
        finally:
            await owner.aclose()


def minutes_ago(minutes: float) -> int:
    """An epoch-ms time this long ago, on a whole second."""
    now = int(time.time()) * 1000
    return now - int(minutes * 60_000)
