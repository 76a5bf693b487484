"""Backfilled batches (past data stored in bulk, as the demo's month of history): their rollups
and trips are built like any batch's, but nothing goes live, no alert fires, no trip is
announced, and their trips are finished at once."""

import time

import pytest
from fastapi import FastAPI
from sqlalchemy import text, update

from obd2_dashboard.dtcs.service import apply_report
from obd2_dashboard.kit.db import session_scope
from obd2_dashboard.live.events import live_stream
from obd2_dashboard.models import AlertRule
from obd2_dashboard.mqtt.events import MQTT_EVENTS_STREAM
from obd2_dashboard.settings import Settings
from obd2_dashboard.telemetry.worker import process_outbox
from obd2_protocol import BridgeDtcReport, DtcEntry, Sample
from obd2_testkit.network import LoopbackOnly, loopback_only
from tests.conftest import World
from tests.trips.helpers import drive


@pytest.fixture(autouse=True)
def _the_test_runs_the_worker(settings: Settings) -> None:
    settings.EMBEDDED_WORKER = False


@pytest.fixture(autouse=True)
def network(monkeypatch: pytest.MonkeyPatch) -> LoopbackOnly:
    return loopback_only(monkeypatch)


async def _work(app: FastAPI) -> None:
    async with session_scope(app.state.obd2.sessionmaker) as session:
        rows = await session.execute(text("SELECT id FROM ingest_outbox ORDER BY id"))
        await process_outbox(session, [int(r[0]) for r in rows], events=app.state.obd2.broker)


async def _told(app: FastAPI) -> list[str]:
    entries = await app.state.obd2.broker.xread(MQTT_EVENTS_STREAM, "0-0", count=1000, block_ms=0)
    return [f["type"] for _, f in entries]


def _samples(start_ms: int, seconds: int, first_seq: int) -> list[Sample]:
    return [
        Sample(seq=first_seq + i, ts=ts, pid=pid, value=value)
        for i, (ts, pid, value) in enumerate(drive(start_ms, seconds, speed=80.0))
    ]


async def test_a_backfilled_drive_is_summarised_but_nobody_is_told(world: World) -> None:
    app = world.app
    user = await world.user("owner@example.com")
    vehicle = await world.vehicle(user)
    _, token = await world.device(vehicle)
    owner = await world.login("owner@example.com")
    for rule in (
        {"kind": "threshold", "pid": "SPEED", "op": "above", "threshold": 50, "duration_s": 10},
        {"kind": "dtc"},
    ):
        response = await owner.post(
            f"/api/v1/vehicles/{vehicle}/alert-rules", json={"name": "rule", **rule}
        )
        assert response.status_code == 201, response.text
    now = int(time.time()) * 1000
    hour_ago = now - 3_600_000
    # The rules are taken to be older than both drives: what keeps the backfilled one from
    # firing is its being backfill, not its time.
    async with session_scope(app.state.obd2.sessionmaker) as session:
        await session.execute(update(AlertRule).values(evaluates_from_ts=hour_ago - 60_000))
    committer = app.state.obd2.committer
    broker = app.state.obd2.broker

    samples = _samples(hour_ago, 600, 0)
    result = await committer.store(token, samples, transport="test", backfill=True)
    assert (result.accepted, result.duplicates) == (len(samples), 0)
    assert await broker.xlen(live_stream(vehicle)) == 0
    await _work(app)
    async with session_scope(app.state.obd2.sessionmaker) as session:
        report = BridgeDtcReport(
            ts=hour_ago, stored=[DtcEntry(code="P0420")], pending=[], permanent=[]
        )
        assert await apply_report(session, vehicle, report, alerts=False) == [("P0420", "stored")]

    (trip,) = (await owner.get(f"/api/v1/vehicles/{vehicle}/trips")).json()
    assert trip["distance_km"] == pytest.approx(80 * 599 / 3600)
    assert trip["finished"] is True
    history = (
        await owner.get(
            f"/api/v1/vehicles/{vehicle}/samples",
            params={"pid": "SPEED", "from": hour_ago - 3_600_000, "to": now, "max_points": 100},
        )
    ).json()
    assert history["source"] == "rollup"
    assert sum(history["count"]) == 600
    assert (await owner.get(f"/api/v1/vehicles/{vehicle}/alerts")).json() == []
    assert await _told(app) == []
    # Nobody was heard from now: the car is not online, no silence rule would clear.
    (car,) = (await owner.get("/api/v1/vehicles")).json()
    assert car["last_seen_at"] is None

    # The same drive ten minutes later, uploaded live: it goes live, fires and is told.
    later = _samples(hour_ago + 1_200_000, 600, 10_000)
    await committer.store(token, later, transport="test")
    assert await broker.xlen(live_stream(vehicle)) == 1
    await _work(app)
    async with session_scope(app.state.obd2.sessionmaker) as session:
        report = BridgeDtcReport(
            ts=now,
            stored=[DtcEntry(code="P0420"), DtcEntry(code="P0171")],
            pending=[],
            permanent=[],
        )
        assert await apply_report(session, vehicle, report) == [("P0171", "stored")]
    alerts = (await owner.get(f"/api/v1/vehicles/{vehicle}/alerts")).json()
    assert sorted(a["kind"] for a in alerts) == ["dtc", "threshold"]
    assert await _told(app) == ["trip.started"]
    trips = (await owner.get(f"/api/v1/vehicles/{vehicle}/trips")).json()
    assert [t["finished"] for t in trips] == [False, True]
    (car,) = (await owner.get("/api/v1/vehicles")).json()
    assert car["last_seen_at"] is not None
