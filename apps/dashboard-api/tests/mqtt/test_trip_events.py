"""Trips driven through ingest and the worker's steps, told on the machine's Mosquitto."""

import json
from dataclasses import replace
from typing import Any

import pytest
from fastapi import FastAPI

from obd2_dashboard.kit.db import session_scope
from obd2_dashboard.mqtt.events import publish_dtc_event
from obd2_dashboard.mqtt.publisher import MqttPublisher
from obd2_dashboard.settings import Settings
from obd2_dashboard.telemetry.worker import RollupWorker, WorkerConfig
from obd2_dashboard.trips.service import recompute_vehicle
from tests.alerts.helpers import Car, minutes_ago
from tests.mqtt.helpers import Listener


@pytest.fixture
def worker(quiet_app: FastAPI, mqtt_settings: Settings) -> RollupWorker:
    """The worker's loops' steps, configured as the worker process would be with MQTT_URL set."""
    state = quiet_app.state.obd2
    config = replace(WorkerConfig.from_settings(mqtt_settings), consumer="test", block_ms=0)
    assert config.trip_events
    return RollupWorker(state.sessionmaker, state.broker, config)


def _drive(start: int, seconds: int) -> list[tuple[int, str, float]]:
    samples: list[tuple[int, str, float]] = []
    for i in range(seconds + 1):
        ts = start + i * 1000
        samples += [(ts, "RPM", 2100.0), (ts, "SPEED", 72.0), (ts, "FUEL_RATE", 6.0)]
    return samples


async def test_a_driven_trip_is_told_started_and_finished_once_even_when_replayed(
    car: Car,
    publisher: MqttPublisher,
    listener: Listener,
    mqtt_settings: Settings,
    quiet_app: FastAPI,
    worker: RollupWorker,
) -> None:
    prefix, ha = mqtt_settings.MQTT_TOPIC_PREFIX, mqtt_settings.HA_DISCOVERY_PREFIX
    vid = car.vehicle_id
    events = f"{prefix}/{vid}/events"
    last_trip = f"{prefix}/{vid}/last_trip"

    def told() -> list[dict[str, Any]]:
        return [json.loads(p) for p in listener.on(events)]

    start = minutes_ago(30)  # longer ago than the join gap: the trip can be declared finished
    batch = await car.send(_drive(start, 300))  # 5 minutes at 72 km/h burning 6 L/h
    assert await worker.consume_once() == 1
    await listener.wait_for("trip.started", lambda: len(told()) >= 1)
    (started,) = told()
    assert started["type"] == "trip.started"
    assert started["vehicle_id"] == vid
    trip = started["trip"]
    assert (trip["start_ts"], trip["end_ts"], trip["duration_s"]) == (start, start + 300_000, 300)
    assert trip["distance_km"] == pytest.approx(6.0)
    assert trip["fuel_used_l"] == pytest.approx(0.5)
    assert trip["economy_l_per_100km"] == pytest.approx(0.5 / 6.0 * 100)
    assert trip["finished"] is False
    assert listener.on(last_trip) == []  # no trip has finished yet

    assert await worker.finish_trips_once() == 1
    await listener.wait_for("trip.finished", lambda: len(told()) >= 2)
    finished = told()[1]
    assert finished["type"] == "trip.finished"
    assert finished["trip"] == {**trip, "finished": True}
    # The last finished trip, retained, with Home Assistant sensors reading its fields.
    await listener.wait_for("last trip", lambda: len(listener.on(last_trip)) >= 1)
    assert json.loads(listener.on(last_trip)[0]) == finished["trip"]
    config = json.loads(listener.on(f"{ha}/sensor/obd2_{vid}_last_trip_distance_km/config")[0])
    assert config["state_topic"] == last_trip
    assert config["value_template"] == "{{ value_json.distance_km }}"
    assert (config["unit_of_measurement"], config["device_class"]) == ("km", "distance")
    assert config["json_attributes_topic"] == last_trip
    assert config["device"]["identifiers"] == [f"obd2_{vid}"]
    economy = listener.on(f"{ha}/sensor/obd2_{vid}_last_trip_economy_l_per_100km/config")
    assert json.loads(economy[0])["unit_of_measurement"] == "L/100km"

    # The agent's spool sends the batch again: nothing stored, nothing told.
    assert await car.post(batch) == {"accepted": 0, "duplicates": len(batch)}
    assert await worker.consume_once() == 0  # nothing new: no work
    # The worker's at-least-once delivery: the same minutes processed again change nothing.
    async with session_scope(quiet_app.state.obd2.sessionmaker) as session:
        minutes = {("RPM", ts - ts % 60_000) for ts, _, _ in _drive(start, 300)}
        assert await recompute_vehicle(session, vid, minutes, 300_000) == []
    assert await worker.finish_trips_once() == 0

    # A late sample inside the finished trip changes its figures: told as an update only.
    await car.send([(start + 150_500, "SPEED", 140.0)])
    assert await worker.consume_once() == 1
    assert await worker.finish_trips_once() == 0
    # A marker after everything else: once it is here, every trip event before it is too.
    await publish_dtc_event(quiet_app.state.obd2.broker, vid, "P0300", "pending")
    await listener.wait_for("marker", lambda: told()[-1]["type"] == "dtc.new")
    assert [e["type"] for e in told()] == [
        "trip.started",
        "trip.finished",
        "trip.updated",
        "dtc.new",
    ]
    updated = told()[2]["trip"]
    assert updated["id"] == trip["id"]
    assert updated["max_speed_kmh"] == 140.0
    assert updated["finished"] is True
    await listener.wait_for("last trip updated", lambda: len(listener.on(last_trip)) >= 2)
    assert json.loads(listener.on(last_trip)[-1]) == updated
