"""Fixtures on the machine's Mosquitto with topic prefixes of the test's own; retained messages
a test leaves are cleared at its end."""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import aiomqtt
import pytest
from fastapi import FastAPI

from obd2_dashboard.mqtt.connection import parse_mqtt_url
from obd2_dashboard.mqtt.publisher import MqttPublisher
from obd2_dashboard.settings import Settings
from tests.alerts.helpers import Car, car, quiet_app
from tests.mqtt.helpers import MQTT_URL, Listener, listen, new_publisher

__all__ = ["car", "listener", "mqtt_settings", "publisher", "quiet_app"]


@pytest.fixture
def mqtt_settings(settings: Settings) -> Settings:
    tag = uuid.uuid4().hex[:10]
    settings.MQTT_URL = MQTT_URL
    settings.MQTT_TOPIC_PREFIX = f"obd2test/{tag}"
    settings.HA_DISCOVERY_PREFIX = f"hatest/{tag}"
    settings.MQTT_STATE_INTERVAL_S = 0.2
    return settings


@pytest.fixture
async def listener(mqtt_settings: Settings) -> AsyncIterator[Listener]:
    found = Listener()
    ready = asyncio.Event()
    prefixes = [mqtt_settings.MQTT_TOPIC_PREFIX, mqtt_settings.HA_DISCOVERY_PREFIX]
    task = asyncio.create_task(listen(prefixes, found, ready))
    await asyncio.wait_for(ready.wait(), 10)
    try:
        yield found
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        # Leave nothing retained on the shared broker.
        target = parse_mqtt_url(MQTT_URL)
        async with aiomqtt.Client(target.host, target.port) as client:
            for topic in {t for t, _, retained in found.messages} | {
                f"{mqtt_settings.MQTT_TOPIC_PREFIX}/status"
            }:
                await client.publish(topic, b"", qos=1, retain=True)


@pytest.fixture
async def publisher(
    quiet_app: FastAPI, mqtt_settings: Settings, car: Car, listener: Listener
) -> AsyncIterator[MqttPublisher]:
    found = new_publisher(quiet_app, mqtt_settings)
    stop = asyncio.Event()
    task = asyncio.create_task(found.run(stop))
    await asyncio.wait_for(found.connected.wait(), 10)
    try:
        yield found
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
