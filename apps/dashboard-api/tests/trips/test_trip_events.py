"""What the worker tells about trips (queued for the MQTT publisher): each trip started once,
updated at most once per minute of driving, merged when late samples join it to another,
finished once."""

import json
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import text

from obd2_dashboard.kit.db import session_scope
from obd2_dashboard.mqtt.events import MQTT_EVENTS_STREAM
from obd2_dashboard.settings import Settings
from obd2_dashboard.telemetry.worker import finish_trips, process_outbox
from tests.conftest import World
from tests.trips.helpers import T0, Car, drive

GAP_MS = 300_000


@pytest.fixture(autouse=True)
def _the_test_runs_the_worker(settings: Settings) -> None:
    settings.EMBEDDED_WORKER = False


async def _work(app: FastAPI) -> None:
    async with session_scope(app.state.obd2.sessionmaker) as session:
        rows = await session.execute(text("SELECT id FROM ingest_outbox ORDER BY id"))
        ids = [int(r[0]) for r in rows]
        await process_outbox(session, ids, trip_join_gap_ms=GAP_MS, events=app.state.obd2.broker)


async def _finish(app: FastAPI, now_ms: int) -> int:
    async with session_scope(app.state.obd2.sessionmaker) as session:
        return await finish_trips(session, now_ms, GAP_MS, events=app.state.obd2.broker)


async def _told(app: FastAPI) -> list[tuple[str, dict[str, Any]]]:
    entries = await app.state.obd2.broker.xread(MQTT_EVENTS_STREAM, "0-0", count=1000, block_ms=0)
    return [(f["type"], json.loads(f["payload"])["trip"]) for _, f in entries]


async def test_a_trip_is_told_started_growing_merged_and_finished_once(world: World) -> None:
    user = await world.user("driver@example.com")
    vehicle = await world.vehicle(user)
    _, token = await world.device(vehicle)
    car = Car(world.client, token)
    # 150 s of driving sent live, a batch each 10 s, each processed on its own.
    for k in range(15):
        await car.upload(drive(T0 + k * 10_000, 10))
        await _work(world.app)
    told = await _told(world.app)
    assert [kind for kind, _ in told] == ["trip.started", "trip.updated", "trip.updated"]
    first = told[0][1]["id"]
    # Told as the trip crossed into its second and third minute.
    assert [trip["end_ts"] for _, trip in told] == [T0 + 9_000, T0 + 69_000, T0 + 129_000]
    assert all(trip["id"] == first and not trip["finished"] for _, trip in told)

    # After a 6-minute park (longer than the join gap) a second trip starts.
    second_start = T0 + 149_000 + 360_000
    await car.upload(drive(second_start, 30))
    await _work(world.app)
    kind, second = (await _told(world.app))[-1]
    assert kind == "trip.started"
    assert second["id"] != first
    # The first is finished once the join gap has passed after its end (by the clock); once.
    assert await _finish(world.app, T0 + 149_000 + GAP_MS) == 0
    assert await _finish(world.app, T0 + 149_000 + GAP_MS + 1) == 1
    assert await _finish(world.app, T0 + 149_000 + GAP_MS + 2) == 0
    kind, finished = (await _told(world.app))[-1]
    assert (kind, finished["id"], finished["finished"]) == ("trip.finished", first, True)

    # The spool delivers the engine idling during the park: the trips join into the first one,
    # which goes on in the second, not finished yet.
    await car.upload([(T0 + 149_000 + 180_000, "RPM", 800.0)])
    await _work(world.app)
    told = await _told(world.app)
    assert [kind for kind, _ in told[5:]] == ["trip.updated", "trip.merged"]
    assert told[5][1]["id"] == first
    assert told[5][1]["end_ts"] == second_start + 29_000
    assert told[5][1]["finished"] is False
    assert told[6][1] == {"id": second["id"], "merged_into": first}

    end = second_start + 29_000
    assert await _finish(world.app, end + GAP_MS + 1) == 1
    assert await _finish(world.app, end + GAP_MS + 60_000) == 0
    kinds = [kind for kind, _ in await _told(world.app)]
    assert kinds[7:] == ["trip.finished"]
