"""Webhook delivery to a receiver of our own on a loopback port: signed, retried, recorded."""

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import uvicorn
from fastapi import FastAPI, Request, Response

from obd2_dashboard.alerts.delivery import AlertDispatcher
from obd2_dashboard.alerts.firing import raise_dtc_alert
from obd2_dashboard.kit.db import session_scope
from obd2_dashboard.settings import Settings
from tests.alerts.helpers import Car

SECRET = "receiver-shared-secret-0123456789"


@dataclass
class Receiver:
    """Answers with the next scripted status (200 once the script is used up)."""

    url: str = ""
    script: list[int] = field(default_factory=list)
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> Response:
            self.requests.append((dict(request.headers), await request.body()))
            return Response(status_code=self.script.pop(0) if self.script else 200)

        return app


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    config = uvicorn.Config(found.app(), host="127.0.0.1", port=0, log_config=None)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    found.url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}/hook"
    try:
        yield found
    finally:
        server.should_exit = True
        await task


def _dispatcher(car: Car, settings: Settings, **overrides: object) -> AlertDispatcher:
    tuned = settings.model_copy(
        update={"ALERT_WEBHOOK_BACKOFF_S": 0.05, "ALERT_WEBHOOK_TIMEOUT_S": 5, **overrides}
    )
    return AlertDispatcher(tuned, car.app.state.obd2.sessionmaker, mqtt=None)


async def _dispatch_until_settled(dispatcher: AlertDispatcher, car: Car) -> None:
    """Runs the delivery loop's step until no delivery is pending (bounded)."""
    for _ in range(200):
        await dispatcher.dispatch_once()
        if all(d.status != "pending" for d in await car.deliveries()):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("deliveries still pending")


async def _fire(car: Car, receiver: Receiver) -> None:
    await car.rule(kind="dtc", webhook_url=receiver.url, mqtt=False, webhook_secret=SECRET)
    async with session_scope(car.app.state.obd2.sessionmaker) as session:
        await raise_dtc_alert(session, car.vehicle_id, "P0301", "stored")


async def test_webhook_is_signed_and_retried_after_two_500s(
    car: Car, receiver: Receiver, settings: Settings
) -> None:
    receiver.script = [500, 500]
    await _fire(car, receiver)
    dispatcher = _dispatcher(car, settings)
    try:
        await _dispatch_until_settled(dispatcher, car)
    finally:
        await dispatcher.close()
    assert len(receiver.requests) == 3
    bodies = {body for _, body in receiver.requests}
    assert len(bodies) == 1  # every retry sends the same bytes
    for headers, body in receiver.requests:
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
    assert receiver.requests[0][0]["x-obd2-delivery"] == str(delivery.id)
    history = (await car.owner.get(f"/api/v1/vehicles/{car.vehicle_id}/alerts")).json()
    assert history[0]["deliveries"][0]["status"] == "delivered"


async def test_attempts_are_bounded_and_the_failure_recorded(
    car: Car, receiver: Receiver, settings: Settings
) -> None:
    receiver.script = [503] * 10
    await _fire(car, receiver)
    dispatcher = _dispatcher(car, settings, ALERT_WEBHOOK_MAX_ATTEMPTS=3)
    try:
        await _dispatch_until_settled(dispatcher, car)
    finally:
        await dispatcher.close()
    assert len(receiver.requests) == 3
    (delivery,) = await car.deliveries()
    assert (delivery.status, delivery.attempts) == ("failed", 3)
    assert delivery.last_error == "HTTP 503"


async def test_a_refusing_receiver_is_not_retried(
    car: Car, receiver: Receiver, settings: Settings
) -> None:
    receiver.script = [410]
    await _fire(car, receiver)
    dispatcher = _dispatcher(car, settings)
    try:
        await _dispatch_until_settled(dispatcher, car)
    finally:
        await dispatcher.close()
    assert len(receiver.requests) == 1
    (delivery,) = await car.deliveries()
    assert (delivery.status, delivery.response_status) == ("failed", 410)


async def test_an_unreachable_receiver_is_retried_later(
    car: Car, receiver: Receiver, settings: Settings
) -> None:
    receiver.url = "http://127.0.0.1:9/hook"  # discard port: nothing listens
    await _fire(car, receiver)
    dispatcher = _dispatcher(car, settings, ALERT_WEBHOOK_BACKOFF_S=3600)
    try:
        assert await dispatcher.dispatch_once() == 1
        # Not due again yet: the backoff holds it back.
        assert await dispatcher.dispatch_once() == 0
    finally:
        await dispatcher.close()
    (delivery,) = await car.deliveries()
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert delivery.last_error is not None
    assert "ConnectError" in delivery.last_error


async def test_mqtt_deliveries_without_mqtt_are_skipped(car: Car, settings: Settings) -> None:
    await car.rule(kind="dtc")
    async with session_scope(car.app.state.obd2.sessionmaker) as session:
        await raise_dtc_alert(session, car.vehicle_id, "P0301", "stored")
    dispatcher = _dispatcher(car, settings)
    try:
        await dispatcher.dispatch_once()
    finally:
        await dispatcher.close()
    (delivery,) = await car.deliveries()
    assert (delivery.channel, delivery.status) == ("mqtt", "skipped")
    assert delivery.last_error == "MQTT_URL is not set"
