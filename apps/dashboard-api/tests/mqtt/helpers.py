"""A listener on the machine's Mosquitto (127.0.0.1:1883, or OBD2_TEST_MQTT_URL)."""

import asyncio
import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import aiomqtt
from fastapi import FastAPI

from obd2_dashboard.mqtt.connection import parse_mqtt_url
from obd2_dashboard.mqtt.publisher import MqttPublisher
from obd2_dashboard.settings import Settings

MQTT_URL = os.environ.get("OBD2_TEST_MQTT_URL", "mqtt://127.0.0.1:1883")


@dataclass
class Listener:
    """Every message under the test's prefixes, as (topic, payload, retained)."""

    messages: list[tuple[str, str, bool]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def on(self, topic: str) -> list[str]:
        return [p for t, p, _ in self.messages if t == topic]

    async def wait_for(self, what: str, found: Callable[[], bool], timeout: float = 20) -> None:
        async def poll() -> None:
            while not found():
                self.arrived.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.arrived.wait(), 0.5)

        try:
            await asyncio.wait_for(poll(), timeout)
        except TimeoutError:
            raise AssertionError(f"no MQTT message: {what}; got {self.messages[-20:]}") from None


async def listen(prefixes: list[str], listener: Listener, ready: asyncio.Event) -> None:
    target = parse_mqtt_url(MQTT_URL)
    async with aiomqtt.Client(target.host, target.port) as client:
        for prefix in prefixes:
            await client.subscribe(f"{prefix}/#", qos=1)
        ready.set()
        async for message in client.messages:
            payload = message.payload
            text = payload.decode() if isinstance(payload, bytes) else str(payload)
            listener.messages.append((str(message.topic), text, bool(message.retain)))
            listener.arrived.set()


def new_publisher(app: FastAPI, settings: Settings) -> MqttPublisher:
    """A publisher on the app's database and broker, not started.

    Its consumer name, hence MQTT client id, is the test's own: the broker drops the older of
    two connections with one id, so tests running side by side would knock each other off.
    """
    assert settings.MQTT_TOPIC_PREFIX.startswith("obd2test/")
    state = app.state.obd2
    consumer = settings.MQTT_TOPIC_PREFIX.replace("/", "-")
    return MqttPublisher(settings, state.sessionmaker, state.broker, consumer=consumer)
