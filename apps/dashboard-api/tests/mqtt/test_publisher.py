"""The MQTT publisher against the machine's Mosquitto (see conftest.py)."""

import asyncio
import contextlib
import json
import os
from pathlib import Path

import pytest
from fastapi import FastAPI

from obd2_dashboard.alerts.delivery import AlertDispatcher
from obd2_dashboard.alerts.firing import raise_dtc_alert
from obd2_dashboard.kit.db import session_scope
from obd2_dashboard.mqtt.connection import parse_mqtt_url
from obd2_dashboard.mqtt.events import (
    MQTT_EVENTS_GROUP,
    MQTT_EVENTS_STREAM,
    publish_dtc_event,
    publish_trip_event,
)
from obd2_dashboard.mqtt.publisher import MqttPublisher, MqttUnavailableError
from obd2_dashboard.settings import Settings, SettingsError
from tests.alerts.helpers import Car, minutes_ago
from tests.conftest import Backend
from tests.mqtt.helpers import MQTT_URL, Listener, listen, new_publisher
from tests.processes import CLI, Proc


async def test_live_values_and_home_assistant_discovery(
    car: Car, publisher: MqttPublisher, listener: Listener, mqtt_settings: Settings
) -> None:
    prefix, ha = mqtt_settings.MQTT_TOPIC_PREFIX, mqtt_settings.HA_DISCOVERY_PREFIX
    vid = car.vehicle_id
    await listener.wait_for("online", lambda: "online" in listener.on(f"{prefix}/status"))
    t0 = minutes_ago(1)
    # 100 RPM values in one batch, out of order: one state message, the newest value.
    rpm = [(t0 + i * 50, "RPM", 1000.0 + i) for i in range(100)][::-1]
    await car.send([*rpm, (t0, "COOLANT_TEMP", 91.5)])
    await listener.wait_for("RPM state", lambda: "1099" in listener.on(f"{prefix}/{vid}/RPM"))
    await listener.wait_for(
        "coolant", lambda: "91.5" in listener.on(f"{prefix}/{vid}/COOLANT_TEMP")
    )
    assert listener.on(f"{prefix}/{vid}/RPM") == ["1099"]
    # A late sample (older than the published one) never replaces the newer value.
    await car.send([(t0 - 60_000, "RPM", 5.0), (t0 + 10_000, "SPEED", 42.0)])
    await listener.wait_for("speed", lambda: "42" in listener.on(f"{prefix}/{vid}/SPEED"))
    assert listener.on(f"{prefix}/{vid}/RPM") == ["1099"]

    (raw,) = listener.on(f"{ha}/sensor/obd2_{vid}_COOLANT_TEMP/config")
    config = json.loads(raw)
    assert config["state_topic"] == f"{prefix}/{vid}/COOLANT_TEMP"
    assert config["unit_of_measurement"] == "°C"
    assert config["device_class"] == "temperature"
    assert config["availability_topic"] == f"{prefix}/status"
    assert config["unique_id"] == f"obd2_{vid}_COOLANT_TEMP"
    assert config["device"]["identifiers"] == [f"obd2_{vid}"]
    assert config["device"]["name"] == "Alert car"
    speed = json.loads(listener.on(f"{ha}/sensor/obd2_{vid}_SPEED/config")[0])
    assert (speed["unit_of_measurement"], speed["device_class"]) == ("km/h", "speed")
    rpm_config = json.loads(listener.on(f"{ha}/sensor/obd2_{vid}_RPM/config")[0])
    assert "device_class" not in rpm_config

    # Retained: a subscriber that comes later still gets configs, states and availability.
    late = Listener()
    ready = asyncio.Event()
    task = asyncio.create_task(listen([prefix, ha], late, ready))
    try:
        await listener.wait_for("retained", lambda: len(late.messages) >= 7)
        retained = {t: p for t, p, r in late.messages if r}
        assert retained[f"{prefix}/status"] == "online"
        assert retained[f"{prefix}/{vid}/RPM"] == "1099"
        assert f"{ha}/sensor/obd2_{vid}_RPM/config" in retained
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_trip_dtc_and_alert_events(
    car: Car,
    publisher: MqttPublisher,
    listener: Listener,
    mqtt_settings: Settings,
    quiet_app: FastAPI,
) -> None:
    events = f"{mqtt_settings.MQTT_TOPIC_PREFIX}/{car.vehicle_id}/events"
    broker = quiet_app.state.obd2.broker
    assert await publish_dtc_event(broker, car.vehicle_id, "P0301", "stored")
    assert await publish_trip_event(broker, car.vehicle_id, "trip.finished", {"id": 7, "km": 12.5})
    await listener.wait_for("two events", lambda: len(listener.on(events)) >= 2)
    dtc, trip = (json.loads(p) for p in listener.on(events))
    assert dtc == {
        "type": "dtc.new",
        "vehicle_id": car.vehicle_id,
        "code": "P0301",
        "kind": "stored",
    }
    assert trip["type"] == "trip.finished"
    assert trip["trip"] == {"id": 7, "km": 12.5}

    await car.rule(kind="dtc")
    async with session_scope(quiet_app.state.obd2.sessionmaker) as session:
        await raise_dtc_alert(session, car.vehicle_id, "P0420", "pending")
    dispatcher = AlertDispatcher(mqtt_settings, quiet_app.state.obd2.sessionmaker, publisher)
    try:
        assert await dispatcher.dispatch_once() == 1
    finally:
        await dispatcher.close()
    await listener.wait_for("alert", lambda: len(listener.on(events)) >= 3)
    alert = json.loads(listener.on(events)[2])
    assert alert["type"] == "alert.fired"
    assert alert["alert"]["subject"] == "P0420"
    (delivery,) = await car.deliveries()
    assert (delivery.channel, delivery.status) == ("mqtt", "delivered")


async def test_events_read_while_disconnected_go_out_on_reconnect(
    car: Car, quiet_app: FastAPI, mqtt_settings: Settings, listener: Listener
) -> None:
    events = f"{mqtt_settings.MQTT_TOPIC_PREFIX}/{car.vehicle_id}/events"
    state = quiet_app.state.obd2
    found = new_publisher(quiet_app, mqtt_settings)
    await state.broker.ensure_group(MQTT_EVENTS_STREAM, MQTT_EVENTS_GROUP)
    for code in ("P0301", "P0302"):
        assert await publish_dtc_event(state.broker, car.vehicle_id, code, "stored")
    # Read from the group, then the connection is gone: both stay with this publisher.
    with pytest.raises(MqttUnavailableError):
        await found.publish_events_once()
    stop = asyncio.Event()
    task = asyncio.create_task(found.run(stop))
    try:
        # Well before another consumer could claim them (30 s idle).
        await listener.wait_for("both", lambda: len(listener.on(events)) >= 2, timeout=10)
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
    assert [json.loads(p)["code"] for p in listener.on(events)] == ["P0301", "P0302"]
    stats = await state.broker.group_stats(MQTT_EVENTS_STREAM, MQTT_EVENTS_GROUP)
    assert stats is not None
    assert stats.pending == 0


async def test_a_clean_stop_says_offline(
    car: Car, quiet_app: FastAPI, mqtt_settings: Settings, listener: Listener
) -> None:
    status = f"{mqtt_settings.MQTT_TOPIC_PREFIX}/status"
    found = new_publisher(quiet_app, mqtt_settings)
    stop = asyncio.Event()
    task = asyncio.create_task(found.run(stop))
    await listener.wait_for("online", lambda: listener.on(status) == ["online"])
    stop.set()
    await asyncio.wait_for(task, 15)
    await listener.wait_for("offline", lambda: listener.on(status) == ["online", "offline"])


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)  # a worker process needs Redis
async def test_the_last_will_says_offline_when_the_worker_dies(
    backend: Backend,
    mqtt_settings: Settings,
    listener: Listener,
    car: Car,
    tmp_path: Path,
) -> None:
    assert backend.redis_url is not None
    status = f"{mqtt_settings.MQTT_TOPIC_PREFIX}/status"
    env = {
        **os.environ,
        "DATABASE_URL": backend.database_url,
        "REDIS_URL": backend.redis_url,
        "REDIS_KEY_PREFIX": mqtt_settings.REDIS_KEY_PREFIX,
        "MQTT_URL": MQTT_URL,
        "MQTT_TOPIC_PREFIX": mqtt_settings.MQTT_TOPIC_PREFIX,
        "HA_DISCOVERY_PREFIX": mqtt_settings.HA_DISCOVERY_PREFIX,
    }
    worker = Proc([CLI, "worker"], env, tmp_path / "worker.log").start()
    try:
        await listener.wait_for("online", lambda: listener.on(status) == ["online"], 30)
        await car.send([(minutes_ago(0), "RPM", 850.0)])
        rpm = f"{mqtt_settings.MQTT_TOPIC_PREFIX}/{car.vehicle_id}/RPM"
        await listener.wait_for("state from the worker", lambda: "850" in listener.on(rpm), 30)
        await asyncio.to_thread(worker.kill9)
        await listener.wait_for(
            "last will", lambda: listener.on(status) == ["online", "offline"], 30
        )
    finally:
        worker.stop()


def test_mqtt_url_is_checked() -> None:
    target = parse_mqtt_url("mqtts://user:p%40ss@broker.local")
    assert (target.host, target.port, target.tls, target.password) == (
        "broker.local",
        8883,
        True,
        "p@ss",
    )
    with pytest.raises(SettingsError, match="MQTT_URL"):
        Settings(MQTT_URL="http://127.0.0.1:1883")
