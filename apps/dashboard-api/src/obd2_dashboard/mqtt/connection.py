from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import aiomqtt

from obd2_dashboard.settings import SettingsError


@dataclass(frozen=True, slots=True)
class MqttTarget:
    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool


def parse_mqtt_url(url: str) -> MqttTarget:
    """``mqtt://[user:pass@]host[:port]`` (1883) or ``mqtts://…`` (TLS, 8883)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise SettingsError(f"MQTT_URL is not mqtt://host[:port] or mqtts://…: {url!r}")
    tls = parts.scheme == "mqtts"
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError as exc:
        raise SettingsError(f"MQTT_URL has a bad port: {url!r}") from exc
    return MqttTarget(
        host=parts.hostname,
        port=port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=tls,
    )


def make_client(
    target: MqttTarget, *, identifier: str, will: aiomqtt.Will, keepalive: int = 30
) -> aiomqtt.Client:
    return aiomqtt.Client(
        target.host,
        target.port,
        username=target.username,
        password=target.password,
        identifier=identifier,
        will=will,
        keepalive=keepalive,
        tls_params=aiomqtt.TLSParameters() if target.tls else None,
        timeout=10,
    )
