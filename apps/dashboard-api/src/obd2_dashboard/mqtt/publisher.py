"""The MQTT publisher: live states, Home Assistant discovery, vehicle events and alerts.

It runs as a loop of the worker process (never in the ingest path): it reads each vehicle's
live stream, the same one browsers watch, and publishes per PID at most once per
``MQTT_STATE_INTERVAL_S`` with the newest value (by sample time) winning. States and discovery
configs are retained, so Home Assistant has the last known values after a restart. Its
availability topic says ``online`` (retained) while it is connected; the broker publishes the
last will ``offline`` (retained) when the connection dies without a goodbye.

Several workers may each run one: states and configs are idempotent, and events come from a
consumer group, so each is published once.
"""

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

import aiomqtt
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from obd2_dashboard.kit.broker import Broker
from obd2_dashboard.live.events import decode_entry, live_stream
from obd2_dashboard.mqtt.connection import MqttTarget, make_client, parse_mqtt_url
from obd2_dashboard.mqtt.events import MQTT_EVENTS_GROUP, MQTT_EVENTS_STREAM
from obd2_dashboard.mqtt.repository import all_vehicles, last_finished_trip
from obd2_dashboard.mqtt.topics import LAST_TRIP_SENSORS, Topics, VehicleInfo, state_payload
from obd2_dashboard.settings import Settings
from obd2_dashboard.trips.events import trip_summary

log = logging.getLogger("obd2_dashboard.mqtt")

PUBLISHED = Counter("obd2_mqtt_messages_total", "MQTT messages published", ["kind"])

_READ_PAGE = 500
_VEHICLE_REFRESH_S = 10.0
_EVENT_CLAIM_IDLE_MS = 30_000


class MqttUnavailableError(Exception):
    pass


class MqttPublisher:
    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        broker: Broker,
        *,
        consumer: str,
    ) -> None:
        assert settings.MQTT_URL is not None
        self.target: MqttTarget = parse_mqtt_url(settings.MQTT_URL)
        self.topics = Topics(settings.MQTT_TOPIC_PREFIX, settings.HA_DISCOVERY_PREFIX)
        self.interval_s = settings.MQTT_STATE_INTERVAL_S
        self.identifier = settings.MQTT_CLIENT_ID or f"obd2-dashboard-{consumer}"
        self.sessionmaker = sessionmaker
        self.broker = broker
        self.consumer = consumer
        self.client: aiomqtt.Client | None = None
        self.connected = asyncio.Event()
        self.vehicles: dict[int, VehicleInfo] = {}
        self._positions: dict[int, str] = {}
        # Newest (sample ts, value) per (vehicle, PID), and what has been sent of it.
        self._latest: dict[tuple[int, str], tuple[int, float]] = {}
        self._sent_ts: dict[tuple[int, str], int] = {}
        self._announced: dict[tuple[int, str], VehicleInfo] = {}
        # Per vehicle: the last trip summary sent, and the vehicle its sensors were announced as.
        self._last_trip: dict[int, str] = {}
        self._trip_announced: dict[int, VehicleInfo] = {}
        self._last_trips_due = True
        self._vehicles_at = 0.0
        # Events delivered to this consumer but not yet published (the connection dropped
        # mid-batch): sent first after reconnecting, not left for another consumer's claim.
        self._undelivered: list[tuple[str, dict[str, str]]] = []

    async def publish(self, topic: str, payload: str, *, retain: bool = False) -> None:
        """Publishes with QoS 1 and waits for the broker's ack; MqttUnavailableError if not
        connected (the caller retries)."""
        client = self.client
        if client is None:
            raise MqttUnavailableError("not connected to the MQTT broker")
        try:
            await client.publish(topic, payload, qos=1, retain=retain, timeout=10)
        except aiomqtt.MqttError as exc:
            raise MqttUnavailableError(str(exc) or type(exc).__name__) from exc

    # -- connection ------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        backoff = 0.5
        while not stop.is_set():
            will = aiomqtt.Will(self.topics.status, "offline", qos=1, retain=True)
            try:
                async with make_client(self.target, identifier=self.identifier, will=will) as c:
                    self.client = c
                    await c.publish(self.topics.status, "online", qos=1, retain=True)
                    await c.subscribe(self.topics.discovery_status, qos=1)
                    self._forget_sent()
                    self.connected.set()
                    log.info("mqtt connected", extra={"host": self.target.host})
                    backoff = 0.5
                    await self._connected(c, stop)
                    self.client = None
                    # A goodbye: the will is not sent after a clean disconnect.
                    await c.publish(self.topics.status, "offline", qos=1, retain=True, timeout=5)
            except aiomqtt.MqttError as exc:
                log.warning("mqtt connection: %s", str(exc)[:200] or type(exc).__name__)
            finally:
                self.client = None
                self.connected.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(backoff * 2, 30.0)

    async def _connected(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        jobs: list[Callable[[], Coroutine[Any, Any, None]]] = [
            self._live_loop,
            self._events_loop,
            lambda: self._listen(client),
        ]
        tasks = {asyncio.create_task(job()) for job in jobs}
        stopping = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait({stopping, *tasks}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not stopping:
                    task.result()  # a lost connection: raised here, reconnected by run()
        finally:
            for task in (stopping, *tasks):
                task.cancel()
            for task in (stopping, *tasks):
                with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                    await task

    async def _listen(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            if message.topic.matches(self.topics.discovery_status) and message.payload == b"online":
                # Home Assistant restarted: announce every sensor and its state again.
                self._forget_sent()

    def _forget_sent(self) -> None:
        self._announced.clear()
        self._sent_ts.clear()
        self._last_trip.clear()
        self._trip_announced.clear()
        self._last_trips_due = True

    # -- live states -----------------------------------------------------------------------
    async def _live_loop(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.publish_live_once()
            except MqttUnavailableError:
                raise
            except Exception as exc:
                log.warning("mqtt live states: %s", type(exc).__name__)
            await asyncio.sleep(max(0.0, self.interval_s - (time.monotonic() - started)))

    async def _refresh_vehicles(self) -> None:
        async with self.sessionmaker() as session:
            self.vehicles = {v.id: v for v in await all_vehicles(session)}
        self._vehicles_at = time.monotonic()

    async def publish_live_once(self) -> int:
        """Reads what the live streams gained and publishes each PID's newest value; returns
        how many states it published."""
        if time.monotonic() - self._vehicles_at >= _VEHICLE_REFRESH_S or not self.vehicles:
            await self._refresh_vehicles()
        for vehicle_id in self.vehicles:
            await self._read_stream(vehicle_id)
        published = 0
        for key, (ts, value) in list(self._latest.items()):
            if self._sent_ts.get(key, -1) >= ts:
                continue
            vehicle = self.vehicles.get(key[0])
            if vehicle is None:
                continue
            if self._announced.get(key) != vehicle:
                await self._announce(vehicle, key[1])
            await self.publish(self.topics.state(*key), state_payload(value), retain=True)
            self._sent_ts[key] = ts
            published += 1
        PUBLISHED.labels("state").inc(published)
        return published

    async def _read_stream(self, vehicle_id: int) -> None:
        stream = live_stream(vehicle_id)
        # A vehicle seen for the first time: its retained entries give the newest values.
        position = self._positions.get(vehicle_id, "0-0")
        while True:
            entries = await self.broker.xread(stream, position, count=_READ_PAGE, block_ms=0)
            for entry_id, fields in entries:
                for event in decode_entry(entry_id, fields):
                    key = (vehicle_id, event.sample.pid)
                    seen = self._latest.get(key)
                    # Late samples (a spool catching up) never overwrite a newer value.
                    if seen is None or event.sample.ts >= seen[0]:
                        self._latest[key] = (event.sample.ts, event.sample.value)
                position = entry_id
            self._positions[vehicle_id] = position
            if len(entries) < _READ_PAGE:
                return

    async def _announce(self, vehicle: VehicleInfo, pid: str) -> None:
        config = self.topics.discovery_config(vehicle, pid)
        await self.publish(
            self.topics.discovery(vehicle.id, pid),
            json.dumps(config, separators=(",", ":"), ensure_ascii=False),
            retain=True,
        )
        self._announced[(vehicle.id, pid)] = vehicle
        PUBLISHED.labels("discovery").inc()

    # -- last trip -------------------------------------------------------------------------
    async def publish_last_trips(self) -> None:
        """Every vehicle's last finished trip (after a connect, or Home Assistant's restart)."""
        self._last_trips_due = False
        try:
            await self._refresh_vehicles()
            for vehicle_id in list(self.vehicles):
                await self.publish_last_trip(vehicle_id)
        except MqttUnavailableError:
            raise
        except Exception as exc:
            log.warning("mqtt last trips: %s", type(exc).__name__)

    async def publish_last_trip(self, vehicle_id: int) -> bool:
        """Publishes the vehicle's last finished trip (retained) and its sensors' discovery
        configs, when it differs from what was sent; True when it published."""
        async with self.sessionmaker() as session:
            found = await last_finished_trip(session, vehicle_id)
        if found is None:
            return False
        payload = json.dumps(trip_summary(*found), separators=(",", ":"))
        if self._last_trip.get(vehicle_id) == payload:
            return False
        if vehicle_id not in self.vehicles:
            await self._refresh_vehicles()
        vehicle = self.vehicles.get(vehicle_id)
        if vehicle is None:
            return False
        if self._trip_announced.get(vehicle_id) != vehicle:
            for sensor in LAST_TRIP_SENSORS:
                config = self.topics.last_trip_config(vehicle, sensor)
                await self.publish(
                    self.topics.last_trip_discovery(vehicle_id, sensor),
                    json.dumps(config, separators=(",", ":"), ensure_ascii=False),
                    retain=True,
                )
                PUBLISHED.labels("discovery").inc()
            self._trip_announced[vehicle_id] = vehicle
        await self.publish(self.topics.last_trip(vehicle_id), payload, retain=True)
        self._last_trip[vehicle_id] = payload
        PUBLISHED.labels("state").inc()
        return True

    # -- events ----------------------------------------------------------------------------
    async def _events_loop(self) -> None:
        group_ready = False
        while True:
            if self._last_trips_due:
                await self.publish_last_trips()
            try:
                if not group_ready:
                    await self.broker.ensure_group(MQTT_EVENTS_STREAM, MQTT_EVENTS_GROUP)
                    group_ready = True
                await self.publish_events_once(block_ms=1_000)
            except MqttUnavailableError:
                raise
            except Exception as exc:
                group_ready = False
                log.warning("mqtt events: %s", type(exc).__name__)
                await asyncio.sleep(1.0)

    async def publish_events_once(self, *, block_ms: int = 0) -> int:
        entries = self._undelivered
        if not entries:
            claimed = await self.broker.xautoclaim(
                MQTT_EVENTS_STREAM,
                MQTT_EVENTS_GROUP,
                self.consumer,
                min_idle_ms=_EVENT_CLAIM_IDLE_MS,
                count=100,
            )
            entries = [(c.id, c.fields) for c in claimed]
        if not entries:
            entries = await self.broker.xreadgroup(
                MQTT_EVENTS_STREAM, MQTT_EVENTS_GROUP, self.consumer, count=100, block_ms=block_ms
            )
        done: list[str] = []
        trips_changed: set[int] = set()
        try:
            for index, (entry_id, fields) in enumerate(entries):
                self._undelivered = entries[index:]
                try:
                    vehicle_id = int(fields["vehicle_id"])
                    payload = fields["payload"]
                except (KeyError, ValueError):
                    log.warning("malformed mqtt event dropped", extra={"entry": entry_id})
                    done.append(entry_id)
                    continue
                await self.publish(self.topics.events(vehicle_id), payload)
                done.append(entry_id)
                PUBLISHED.labels("event").inc()
                if fields.get("type", "").startswith("trip."):
                    trips_changed.add(vehicle_id)
            self._undelivered = []
            for vehicle_id in sorted(trips_changed):
                await self.publish_last_trip(vehicle_id)
        finally:
            if done:
                await self.broker.xack(MQTT_EVENTS_STREAM, MQTT_EVENTS_GROUP, done)
        return len(done)
