from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from obd2_dashboard.kit.db import session_scope
from obd2_dashboard.telemetry.worker import process_outbox

Sample = tuple[int, str, float]
T0 = 1_780_000_000_000 - 1_780_000_000_000 % 60_000  # a whole minute


def drive(start: int, seconds: int, speed: float = 60.0, rpm: float = 2000.0) -> list[Sample]:
    """RPM and SPEED once a second for ``seconds`` seconds."""
    out: list[Sample] = []
    for i in range(seconds):
        ts = start + i * 1000
        out += [(ts, "RPM", rpm), (ts, "SPEED", speed)]
    return out


@dataclass
class Car:
    """A device of one vehicle that uploads through the real ingest endpoint."""

    client: httpx.AsyncClient
    token: str
    seq: int = 0
    sent: list[list[dict[str, Any]]] = field(default_factory=list)

    async def upload(self, samples: list[Sample]) -> list[list[dict[str, Any]]]:
        batches: list[list[dict[str, Any]]] = []
        for start in range(0, len(samples), 5000):
            batch: list[dict[str, Any]] = []
            for ts, pid, value in samples[start : start + 5000]:
                batch.append({"seq": self.seq, "ts": ts, "pid": pid, "value": value})
                self.seq += 1
            await self.replay(batch)
            batches.append(batch)
        self.sent += batches
        return batches

    async def replay(self, batch: list[dict[str, Any]]) -> dict[str, Any]:
        response = await self.client.post(
            "/api/v1/ingest",
            json={"samples": batch},
            headers={"Authorization": f"Bearer {self.token}"},
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result


async def run_worker(app: FastAPI) -> int:
    """Does the worker's job for every pending batch, with the app's trip join gap."""
    gap_ms = app.state.obd2.settings.TRIP_JOIN_GAP_S * 1000
    async with session_scope(app.state.obd2.sessionmaker) as session:
        rows = await session.execute(text("SELECT id FROM ingest_outbox ORDER BY id"))
        return await process_outbox(session, [int(r[0]) for r in rows], trip_join_gap_ms=gap_ms)


async def stored_trips(app: FastAPI) -> list[tuple[Any, ...]]:
    """Every trip row (without bookkeeping columns), in time order."""
    async with app.state.obd2.sessionmaker() as session:
        result = await session.execute(
            text(
                "SELECT id, vehicle_id, start_ts, end_ts, distance_km, moving_s, idle_s, "
                "max_speed_kmh, max_rpm, max_coolant_c, fuel_rate_l, air_g, sample_count, "
                "track_points, state FROM trips ORDER BY vehicle_id, start_ts"
            )
        )
        return [tuple(row) for row in result]
