"""Webhook delivery to a receiver of our own on a loopback port: signed, retried, recorded."""

import hashlib
import hmac
import json

import pytest

from obd2_dashboard.alerts.firing import raise_dtc_alert
from obd2_dashboard.kit.db import session_scope
from obd2_dashboard.settings import Settings
from tests.alerts.helpers import Car, Receiver, dispatch_until_settled, dispatcher_for
from tests.conftest import closed_port_url

SECRET = "receiver-shared-secret-0123456789"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The receivers here are on loopback, which outbound requests may reach only when allowed.
    return settings.model_copy(update={"OUTBOUND_ALLOW_CIDRS": "127.0.0.0/8"})


async def _fire(car: Car, url: str) -> None:
    await car.rule(kind="dtc", webhook_url=url, mqtt=False, webhook_secret=SECRET)
    async with session_scope(car.app.state.obd2.sessionmaker) as session:
        await raise_dtc_alert(session, car.vehicle_id, "P0301", "stored")


async def test_webhook_is_signed_and_retried_after_two_500s(
    car: Car, receiver: Receiver, settings: Settings
) -> None:
    receiver.script = [500, 500]
    await _fire(car, receiver.url)
    dispatcher = dispatcher_for(car, settings)
    try:
        await dispatch_until_settled(dispatcher, car)
    finally:
        await dispatcher.close()
    assert len(receiver.requests) == 3
    bodies = {body for _, _, body in receiver.requests}
    assert len(bodies) == 1  # every retry sends the same bytes
    for _path, headers, body in receiver.requests:
        expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert headers["x-obd2-signature"] == f"sha256={expected}"
        assert headers["x-obd2-event"] == "alert.fired"
        assert headers["content-type"] == "application/json"
    payload = json.loads(bodies.pop())
    assert payload["type"] == "alert.fired"
    assert payload["alert"]["subject"] == "P0301"
    assert payload["vehicle_id"] == car.vehicle_id
    (delivery,) = await car.deliveries()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("delivered", 3, 200)
    assert delivery.delivered_at is not None
    assert receiver.requests[0][1]["x-obd2-delivery"] == str(delivery.id)
    history = (await car.owner.get(f"/api/v1/vehicles/{car.vehicle_id}/alerts")).json()
    assert history[0]["deliveries"][0]["status"] == "delivered"


async def test_attempts_are_bounded_and_the_failure_recorded(
    car: Car, receiver: Receiver, settings: Settings
) -> None:
    receiver.script = [503] * 10
    await _fire(car, receiver.url)
    dispatcher = dispatcher_for(car, settings, ALERT_WEBHOOK_MAX_ATTEMPTS=3)
    try:
        await dispatch_until_settled(dispatcher, car)
    finally:
        await dispatcher.close()
    assert len(receiver.requests) == 3
    (delivery,) = await car.deliveries()
    assert (delivery.status, delivery.attempts) == ("failed", 3)
    assert delivery.last_error == "failed: HTTP 5xx"


async def test_a_refusing_receiver_is_not_retried(
    car: Car, receiver: Receiver, settings: Settings
) -> None:
    receiver.script = [410]
    await _fire(car, receiver.url)
    dispatcher = dispatcher_for(car, settings)
    try:
        await dispatch_until_settled(dispatcher, car)
    finally:
        await dispatcher.close()
    assert len(receiver.requests) == 1
    (delivery,) = await car.deliveries()
    assert (delivery.status, delivery.response_status) == ("failed", 410)


async def test_an_unreachable_receiver_is_retried_later(car: Car, settings: Settings) -> None:
    await _fire(car, closed_port_url("http"))
    dispatcher = dispatcher_for(car, settings, ALERT_WEBHOOK_BACKOFF_S=3600)
    try:
        assert await dispatcher.dispatch_once() == 1
        # Not due again yet: the backoff holds it back.
        assert await dispatcher.dispatch_once() == 0
    finally:
        await dispatcher.close()
    (delivery,) = await car.deliveries()
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert delivery.last_error == "failed: no HTTP response"


async def test_mqtt_deliveries_without_mqtt_are_skipped(car: Car, settings: Settings) -> None:
    await car.rule(kind="dtc")
    async with session_scope(car.app.state.obd2.sessionmaker) as session:
        await raise_dtc_alert(session, car.vehicle_id, "P0301", "stored")
    dispatcher = dispatcher_for(car, settings)
    try:
        await dispatcher.dispatch_once()
    finally:
        await dispatcher.close()
    (delivery,) = await car.deliveries()
    assert (delivery.channel, delivery.status) == ("mqtt", "skipped")
    assert delivery.last_error == "MQTT_URL is not set"
