"""Webhooks reach only what the operator allows (SSRF): refused when a rule is saved and again at
delivery, with a receiver of our own on loopback that must get nothing.

Every test runs under the alert suite's network guard (``network``): names resolve only from
the test's own table, and a connection to anything but loopback fails before any packet and is
recorded, so even a broken check never reaches the addresses these tests name.
"""

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import update

from obd2_dashboard.alerts.firing import raise_dtc_alert
from obd2_dashboard.kit.db import session_scope
from obd2_dashboard.models import AlertDelivery, AlertRule
from obd2_dashboard.settings import Settings
from obd2_testkit.network import LoopbackOnly
from tests.alerts.helpers import (
    ENDLESS,
    PUBLIC_ADDRESS,
    Car,
    Listener,
    Receiver,
    dispatch_until_settled,
    dispatcher_for,
)
from tests.conftest import World, closed_port_url
from tests.vehicles.test_sharing import share_and_accept

SECRET = "receiver-shared-secret-0123456789"
# Names a test resolves to its loopback receiver: if one were not refused, the receiver would
# get the request (and the test would see it), not some real host.
LOOPBACK_NAMES = ("metadata.google.internal", "metadata", "instance-data", "rebind.example")


def _rules(car: Car) -> str:
    return f"/api/v1/vehicles/{car.vehicle_id}/alert-rules"


def _ssrf_forms(port: int) -> list[tuple[str, str]]:
    """(webhook URL, what the 422 must say) for every form found to reach inside."""
    loopback = "in a loopback network (127.0.0.0/8)"
    return [
        (f"http://127.0.0.1:{port}/hook", loopback),
        (f"http://[::1]:{port}/hook", "in a loopback network (::1/128)"),
        (f"http://2130706433:{port}/hook", loopback),
        (f"http://0x7f.1:{port}/hook", loopback),
        (f"http://127.1:{port}/hook", loopback),
        (f"http://0177.0.0.1:{port}/hook", loopback),
        (f"http://[::ffff:127.0.0.1]:{port}/hook", loopback),
        (f"http://user:pass@127.0.0.1:{port}/hook", "must not carry a user name or password"),
        ("http://169.254.169.254/latest/meta-data/iam/", "a cloud metadata service"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "a cloud metadata service"),
        ("http://100.100.100.200/latest/meta-data/", "a cloud metadata service"),
        (f"http://metadata.google.internal:{port}/computeMetadata/v1/", "cloud metadata"),
        (f"http://metadata:{port}/computeMetadata/v1/", "cloud metadata"),
        (f"http://instance-data:{port}/latest/", "cloud metadata"),
        (f"http://rebind.example:{port}/hook", "resolves to an address that is " + loopback),
        ("http://10.1.2.3/hook", "in a private network (10.0.0.0/8)"),
        ("http://192.168.1.20:8123/api/webhook/x", "in a private network (192.168.0.0/16)"),
        ("http://100.64.0.1/hook", "in a carrier-grade NAT network (100.64.0.0/10)"),
        ("http://[fe80::1]/hook", "in a link-local network (fe80::/10)"),
        ("http://[fc00::1]/hook", "in a private network (fc00::/7)"),
        ("http://[64:ff9b::a9fe:a9fe]/hook", "NAT64 form"),
        ("http://224.0.0.1/hook", "multicast"),
        ("http://0.0.0.0:6379/", "unspecified"),
    ]


def _resolve_to_receiver(network: LoopbackOnly) -> None:
    for name in LOOPBACK_NAMES:
        network.names[name] = ["127.0.0.1"]


async def _store_rules(car: Car, urls: list[str]) -> None:
    """Rules saved straight into the database, as rules saved before the check existed are."""
    async with session_scope(car.app.state.obd2.sessionmaker) as session:
        for n, url in enumerate(urls):
            session.add(
                AlertRule(
                    vehicle_id=car.vehicle_id,
                    name=f"rule {n}",
                    kind="dtc",
                    firing=False,
                    webhook_url=url,
                    webhook_secret=SECRET,
                    mqtt=False,
                )
            )


async def _fire(car: Car) -> None:
    async with session_scope(car.app.state.obd2.sessionmaker) as session:
        await raise_dtc_alert(session, car.vehicle_id, "P0301", "stored")


async def _deliver(car: Car, settings: Settings, **overrides: object) -> None:
    dispatcher = dispatcher_for(car, settings, **overrides)
    try:
        await dispatch_until_settled(dispatcher, car)
    finally:
        await dispatcher.close()


async def test_every_ssrf_form_is_refused_when_the_rule_is_saved(
    car: Car, receiver: Receiver, network: LoopbackOnly
) -> None:
    _resolve_to_receiver(network)
    for url, reason in _ssrf_forms(receiver.port):
        response = await car.owner.post(
            _rules(car), json={"name": "hook", "kind": "dtc", "webhook_url": url}
        )
        assert response.status_code == 422, (url, response.text)
        detail = response.json()["detail"]
        assert detail.startswith("invalid request: body.webhook_url: "), (url, detail)
        assert reason in detail, (url, detail)
    # A range the operator could open says how; metadata and credentials never can be.
    assert (
        "the operator can allow it with OUTBOUND_ALLOW_CIDRS"
        in (
            await car.owner.post(
                _rules(car), json={"name": "hook", "kind": "dtc", "webhook_url": receiver.url}
            )
        ).json()["detail"]
    )
    # A name without an address is a clear error too (the lookup is the test's table's).
    unknown = await car.owner.post(
        _rules(car), json={"name": "hook", "kind": "dtc", "webhook_url": "http://nowhere.example/"}
    )
    assert unknown.status_code == 422
    assert unknown.json()["detail"].endswith("body.webhook_url: nowhere.example does not resolve")
    # Changing a rule's webhook to one is refused too, and changes nothing.
    rule = (await car.owner.post(_rules(car), json={"name": "ok", "kind": "dtc"})).json()
    changed = await car.owner.patch(
        f"{_rules(car)}/{rule['id']}", json={"webhook_url": receiver.url}
    )
    assert changed.status_code == 422, changed.text
    assert "loopback" in changed.json()["detail"]
    assert [r["webhook_url"] for r in (await car.owner.get(_rules(car))).json()] == [None]
    assert receiver.requests == []
    assert network.attempts == []


async def test_every_ssrf_form_is_refused_at_delivery(
    car: Car, receiver: Receiver, network: LoopbackOnly, settings: Settings
) -> None:
    _resolve_to_receiver(network)
    urls = [url for url, _ in _ssrf_forms(receiver.port)]
    await _store_rules(car, urls)
    await _fire(car)
    await _deliver(car, settings)
    deliveries = await car.deliveries()
    assert len(deliveries) == len(urls)
    assert {(d.status, d.attempts, d.last_error) for d in deliveries} == {
        ("failed", 1, "refused by policy")
    }  # fmt: skip
    assert receiver.requests == []
    assert network.attempts == []


async def test_metadata_and_credentials_stay_refused_when_their_range_is_allowed(
    car: Car, receiver: Receiver, network: LoopbackOnly, settings: Settings
) -> None:
    _resolve_to_receiver(network)
    settings.OUTBOUND_ALLOW_CIDRS = "127.0.0.0/8, ::1/128, 169.254.0.0/16, 100.64.0.0/10, fc00::/7"
    port = receiver.port
    never = [
        f"http://metadata.google.internal:{port}/computeMetadata/v1/",
        f"http://metadata:{port}/computeMetadata/v1/",
        f"http://instance-data:{port}/latest/",
        f"http://user:pass@127.0.0.1:{port}/hook",
        "http://169.254.169.254/latest/meta-data/iam/",
        "http://100.100.100.200/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
    ]
    for url in never:
        response = await car.owner.post(
            _rules(car), json={"name": "hook", "kind": "dtc", "webhook_url": url}
        )
        assert response.status_code == 422, (url, response.text)
        assert "OUTBOUND_ALLOW_CIDRS" not in response.json()["detail"], url
    await _store_rules(car, never)
    await _fire(car)
    await _deliver(car, settings)
    assert {d.last_error for d in await car.deliveries()} == {"refused by policy"}
    assert receiver.requests == []
    assert network.attempts == []


async def test_a_name_that_rebinds_to_loopback_after_the_save_is_refused_at_delivery(
    car: Car, receiver: Receiver, network: LoopbackOnly, settings: Settings
) -> None:
    # Public when the rule is saved (checked, never connected to) …
    network.names["rebind.example"] = [PUBLIC_ADDRESS]
    url = f"http://rebind.example:{receiver.port}/hook"
    await car.rule(kind="dtc", webhook_url=url, mqtt=False, webhook_secret=SECRET)
    # … loopback when the alert is sent.
    network.names["rebind.example"] = ["127.0.0.1"]
    await _fire(car)
    await _deliver(car, settings)
    (delivery,) = await car.deliveries()
    assert (delivery.status, delivery.attempts, delivery.last_error) == (
        "failed",
        1,
        "refused by policy",
    )
    assert receiver.requests == []
    assert network.attempts == []


async def test_the_operator_allows_a_private_receiver_with_outbound_allow_cidrs(
    car: Car, receiver: Receiver, network: LoopbackOnly, settings: Settings
) -> None:
    network.names["hooks.lan"] = ["127.0.0.1"]
    url = f"http://hooks.lan:{receiver.port}/hook"
    body = {"name": "lan", "kind": "dtc", "webhook_url": url, "mqtt": False}
    refused = await car.owner.post(_rules(car), json=body)
    assert refused.status_code == 422
    assert "hooks.lan resolves to an address that is in a loopback network" in refused.text
    settings.OUTBOUND_ALLOW_CIDRS = "127.0.0.1/32"
    saved = await car.owner.post(_rules(car), json=body)
    assert saved.status_code == 201, saved.text
    await _fire(car)
    await _deliver(car, settings)
    (delivery,) = await car.deliveries()
    assert (delivery.status, delivery.last_error, delivery.response_status) == (
        "delivered",
        None,
        200,
    )
    ((path, headers, _),) = receiver.requests
    # Connected to the checked address, still addressed to the name.
    assert (path, headers["host"]) == ("/hook", f"hooks.lan:{receiver.port}")
    # Narrowing the range again refuses the stored rule at its next delivery.
    settings.OUTBOUND_ALLOW_CIDRS = "127.0.0.2/32"
    async with session_scope(car.app.state.obd2.sessionmaker) as session:
        await session.execute(update(AlertRule).values(cooldown_s=0))
    await _fire(car)
    await _deliver(car, settings)
    assert [d.last_error for d in await car.deliveries()] == [None, "refused by policy"]
    assert len(receiver.requests) == 1
    assert network.attempts == []


async def test_redirects_are_not_followed(
    car: Car, receiver: Receiver, network: LoopbackOnly, settings: Settings
) -> None:
    settings.OUTBOUND_ALLOW_CIDRS = "127.0.0.0/8"
    receiver.script = [302]
    receiver.redirect_to = f"http://127.0.0.1:{receiver.port}/elsewhere"
    await car.rule(kind="dtc", webhook_url=receiver.url, mqtt=False, webhook_secret=SECRET)
    await _fire(car)
    await _deliver(car, settings)
    (delivery,) = await car.deliveries()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("failed", 1, 302)
    assert delivery.last_error == "failed: HTTP 3xx (redirects are not followed)"
    assert [path for path, _, _ in receiver.requests] == ["/hook"]
    assert network.attempts == []


async def test_delivery_errors_do_not_tell_closed_from_filtered_from_not_http(
    car: Car,
    receiver: Receiver,
    silent_listener: Listener,
    banner_listener: Listener,
    network: LoopbackOnly,
    settings: Settings,
) -> None:
    settings.OUTBOUND_ALLOW_CIDRS = "127.0.0.0/8"
    receiver.script = [500]
    receivers = {
        "closed port": closed_port_url("http"),
        "silent port": f"http://127.0.0.1:{silent_listener.port}/",
        "not HTTP": f"http://127.0.0.1:{banner_listener.port}/",
        "HTTP 500": receiver.url,
    }
    for name, url in receivers.items():
        await car.rule(name=name, kind="dtc", webhook_url=url, mqtt=False)
    await _fire(car)
    await _deliver(car, settings, ALERT_WEBHOOK_MAX_ATTEMPTS=1, ALERT_WEBHOOK_TIMEOUT_S=0.5)
    assert silent_listener.connections == 1
    assert banner_listener.connections == 1
    history = (await car.owner.get(f"/api/v1/vehicles/{car.vehicle_id}/alerts")).json()
    shown = {a["rule_name"]: a["deliveries"][0] for a in history}
    assert {name: d["last_error"] for name, d in shown.items()} == {
        "closed port": "failed: no HTTP response",
        "silent port": "failed: no HTTP response",
        "not HTTP": "failed: no HTTP response",
        "HTTP 500": "failed: HTTP 5xx",
    }
    assert {name: d["status"] for name, d in shown.items()} == dict.fromkeys(receivers, "failed")
    stored = {d.last_error for d in await car.deliveries()}
    assert stored == {"failed: no HTTP response", "failed: HTTP 5xx"}
    assert network.attempts == []


async def test_error_texts_stored_before_are_shown_coarsely(car: Car) -> None:
    await car.rule(kind="dtc", mqtt=True)
    await _fire(car)
    async with session_scope(car.app.state.obd2.sessionmaker) as session:
        await session.execute(
            update(AlertDelivery).values(
                status="failed",
                last_error="ConnectError: [Errno 111] Connection refused (127.0.0.1:6379)",
            )
        )
    (alert,) = (await car.owner.get(f"/api/v1/vehicles/{car.vehicle_id}/alerts")).json()
    assert alert["deliveries"][0]["last_error"] == "failed: MQTT broker unavailable"


async def test_an_endless_answer_does_not_hold_the_delivery(
    car: Car, receiver: Receiver, network: LoopbackOnly, settings: Settings
) -> None:
    settings.OUTBOUND_ALLOW_CIDRS = "127.0.0.0/8"
    receiver.script = [ENDLESS]
    await car.rule(kind="dtc", webhook_url=receiver.url, mqtt=False, webhook_secret=SECRET)
    await _fire(car)
    # Only the first 64 KiB of the answer are read: its status is what counts.
    await asyncio.wait_for(_deliver(car, settings, ALERT_WEBHOOK_TIMEOUT_S=30), 20)
    (delivery,) = await car.deliveries()
    assert (delivery.status, delivery.response_status) == ("delivered", 200)


@pytest.fixture
async def viewer(car: Car) -> AsyncIterator[httpx.AsyncClient]:
    world = World(car.app, car.client)
    await world.user("vera@example.com")
    try:
        vera = await world.login("vera@example.com")
        await share_and_accept(car.owner, vera, car.vehicle_id, "vera@example.com")
        yield vera
    finally:
        await world.close()


async def test_a_viewer_sees_the_alerts_without_their_deliveries(
    car: Car, viewer: httpx.AsyncClient, network: LoopbackOnly
) -> None:
    network.names["hooks.example.com"] = [PUBLIC_ADDRESS]
    await car.rule(kind="dtc", webhook_url="https://hooks.example.com/h", mqtt=True)
    await _fire(car)
    url = f"/api/v1/vehicles/{car.vehicle_id}/alerts"
    (owners,) = (await car.owner.get(url)).json()
    (viewers,) = (await viewer.get(url)).json()
    assert {d["channel"] for d in owners["deliveries"]} == {"webhook", "mqtt"}
    assert viewers["deliveries"] == []
    assert {k: v for k, v in viewers.items() if k != "deliveries"} == {
        k: v for k, v in owners.items() if k != "deliveries"
    }
    for field in ("last_error", "response_status", "attempts", "hooks.example.com"):
        assert field not in (await viewer.get(url)).text
        assert field not in (await viewer.get(_rules(car))).text
