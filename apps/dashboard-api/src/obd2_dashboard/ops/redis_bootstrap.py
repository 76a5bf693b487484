"""Streams, consumer groups and the schema-version key the server expects in Redis."""

from dataclasses import dataclass

from obd2_dashboard.kit.broker import Broker
from obd2_dashboard.mqtt.events import MQTT_EVENTS_GROUP, MQTT_EVENTS_STREAM
from obd2_dashboard.telemetry.streams import WORK_GROUP, WORK_STREAM

REDIS_SCHEMA_VERSION = 1
SCHEMA_VERSION_KEY = "schema_version"


class RedisSchemaError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class BootstrapReport:
    created_groups: list[str]
    schema_version_before: int | None
    schema_version: int


async def schema_version(broker: Broker) -> int | None:
    value = await broker.get(SCHEMA_VERSION_KEY)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise RedisSchemaError(f"schema version key holds {value!r}, not a number") from exc


async def bootstrap(broker: Broker) -> BootstrapReport:
    """Creates what is missing and deletes nothing: safe to run any number of times."""
    before = await schema_version(broker)
    if before is not None and before > REDIS_SCHEMA_VERSION:
        raise RedisSchemaError(
            f"Redis schema version {before} is newer than this release's {REDIS_SCHEMA_VERSION}"
        )
    created = []
    if await broker.ensure_group(WORK_STREAM, WORK_GROUP):
        created.append(f"{WORK_STREAM}/{WORK_GROUP}")
    if await broker.ensure_group(MQTT_EVENTS_STREAM, MQTT_EVENTS_GROUP):
        created.append(f"{MQTT_EVENTS_STREAM}/{MQTT_EVENTS_GROUP}")
    if before != REDIS_SCHEMA_VERSION:
        await broker.set(SCHEMA_VERSION_KEY, str(REDIS_SCHEMA_VERSION))
    return BootstrapReport(created, before, REDIS_SCHEMA_VERSION)
