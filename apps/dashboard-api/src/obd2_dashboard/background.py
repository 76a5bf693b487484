"""The loops the worker process runs beside the rollup consumer."""

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from obd2_dashboard.alerts.delivery import AlertDispatcher
from obd2_dashboard.kit.broker import Broker
from obd2_dashboard.mqtt.publisher import MqttPublisher
from obd2_dashboard.settings import Settings
from obd2_dashboard.telemetry.worker import Loop


def worker_companions(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    broker: Broker,
    *,
    consumer: str,
) -> list[Loop]:
    mqtt = None
    if settings.MQTT_URL is not None:
        mqtt = MqttPublisher(settings, sessionmaker, broker, consumer=consumer)
    dispatcher = AlertDispatcher(settings, sessionmaker, mqtt)
    loops: list[Loop] = [dispatcher.run, dispatcher.run_silence_checks]
    if mqtt is not None:
        loops.append(mqtt.run)
    return loops
