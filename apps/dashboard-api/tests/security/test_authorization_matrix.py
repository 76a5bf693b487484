"""Every route, as everyone who could call it, against a real server.

The principals: anonymous; the owner of a vehicle; another user; an admin; a viewer the vehicle
is shared with read-only; a device of the vehicle; a revoked device. There is no admin role in
the API: ``is_admin`` only marks accounts made with ``create-user --admin`` (the demo's), the
operator CLI is the admin surface (doc/interface.md), so an admin is any other user here: 404 on
what is not theirs.

Every route of the OpenAPI document and every WebSocket route must be classified below: a new
route fails ``test_every_route_is_classified`` until it is.
"""

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.routing import WebSocketRoute
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from obd2_dashboard.kit.db import utcnow
from obd2_dashboard.models import (
    Alert,
    AlertRule,
    Device,
    ShareInvitation,
    Trip,
    TripPoint,
    VehicleShare,
)
from tests.conftest import PASSWORD, Served, World

USERS = ("owner", "other", "admin", "viewer")
DEVICES = ("device", "revoked")
PRINCIPALS = ("anonymous", *USERS, *DEVICES)
OWNER_NAME = "Alice's car"
OWNER_VIN = "WVWZZZ1JZXW000001"
OWNER_RULE = "Alice's rule"

Expected = dict[str, int]


def _everyone(status: int) -> Expected:
    return dict.fromkeys(PRINCIPALS, status)


def _signed_in(status: int) -> Expected:
    """Anyone signed in, about themselves; devices and anonymous callers are not signed in."""
    return {**_everyone(401), **dict.fromkeys(USERS, status)}


def _readable(status: int) -> Expected:
    """The vehicle's data: its owner and its viewer read it; to anyone else it does not exist."""
    return {**_everyone(401), "owner": status, "viewer": status, "other": 404, "admin": 404}


def _owner_only(status: int) -> Expected:
    """Changes, and what only the owner sees: the viewer is refused, others find nothing."""
    return {**_everyone(401), "owner": status, "viewer": 403, "other": 404, "admin": 404}


def _invitee(status: int) -> Expected:
    """An invitation addressed to the other user: theirs to answer, not found to anyone else."""
    return {**_everyone(401), "owner": 404, "other": status, "admin": 404, "viewer": 404}


def _device_upload(status: int) -> Expected:
    """Uploads: a device's token, nothing else (a session cookie does not authenticate)."""
    return {**_everyone(401), "device": status}


@dataclass(frozen=True, slots=True)
class Call:
    expected: Expected
    body: Any = None
    query: dict[str, str] | None = None


# Trip totals take a range of at most 400 days.
_WEEK_AGO_MS = int(time.time() * 1000) - 7 * 86_400_000

# (method, path) → what each principal gets. Ordered: what changes or removes things runs last.
MATRIX: dict[tuple[str, str], Call] = {
    ("GET", "/healthz"): Call(_everyone(200)),
    ("GET", "/readyz"): Call(_everyone(200)),
    ("GET", "/metrics"): Call(_everyone(200)),
    # Sign-in takes no credentials but the ones in its body (these are nobody's).
    ("POST", "/api/v1/auth/login"): Call(_everyone(401), "login"),
    ("GET", "/api/v1/auth/me"): Call(_signed_in(200)),
    ("GET", "/api/v1/me/preferences"): Call(_signed_in(200)),
    ("GET", "/api/v1/units"): Call(_signed_in(200)),
    ("GET", "/api/v1/vehicles"): Call(_signed_in(200)),
    ("GET", "/api/v1/vehicles/{vehicle_id}"): Call(_readable(200)),
    ("GET", "/api/v1/vehicles/{vehicle_id}/shares"): Call(_owner_only(200)),
    ("GET", "/api/v1/vehicles/{vehicle_id}/invitations"): Call(_owner_only(200)),
    ("GET", "/api/v1/invitations"): Call(_signed_in(200)),
    ("GET", "/api/v1/vehicles/{vehicle_id}/devices"): Call(_owner_only(200)),
    ("GET", "/api/v1/vehicles/{vehicle_id}/samples"): Call(
        _readable(200), query={"pid": "RPM", "from": "0", "to": str(2**53)}
    ),
    ("GET", "/api/v1/vehicles/{vehicle_id}/samples.csv"): Call(
        _readable(200), query={"pid": "RPM", "from": "0", "to": str(2**53)}
    ),
    ("GET", "/api/v1/vehicles/{vehicle_id}/trips"): Call(_readable(200)),
    ("GET", "/api/v1/vehicles/{vehicle_id}/trips/{trip_id}"): Call(_readable(200)),
    ("GET", "/api/v1/vehicles/{vehicle_id}/trips/{trip_id}.gpx"): Call(_readable(200)),
    ("GET", "/api/v1/vehicles/{vehicle_id}/trips/{trip_id}.csv"): Call(_readable(200)),
    ("GET", "/api/v1/vehicles/{vehicle_id}/trips/{trip_id}/track"): Call(_readable(200)),
    ("GET", "/api/v1/vehicles/{vehicle_id}/trips/totals"): Call(
        _readable(200), query={"from": str(_WEEK_AGO_MS), "to": str(_WEEK_AGO_MS + 7 * 86_400_000)}
    ),
    ("GET", "/api/v1/map"): Call(_signed_in(200)),
    ("GET", "/api/v1/streams/vehicles/{vehicle_id}"): Call(_readable(200)),
    ("GET", "/api/v1/vehicles/{vehicle_id}/dtcs"): Call(_readable(200)),
    ("GET", "/api/v1/vehicles/{vehicle_id}/commands"): Call(_readable(200)),
    ("GET", "/api/v1/vehicles/{vehicle_id}/alert-rules"): Call(_readable(200)),
    ("GET", "/api/v1/vehicles/{vehicle_id}/alert-rules/{rule_id}"): Call(_readable(200)),
    ("GET", "/api/v1/vehicles/{vehicle_id}/alerts"): Call(_readable(200)),
    ("GET", "/api/v1/pids"): Call(_signed_in(200)),
    ("GET", "/api/v1/vehicles/{vehicle_id}/pids"): Call(_readable(200)),
    ("GET", "/api/v1/vehicles/{vehicle_id}/events"): Call(
        _readable(200), query={"from": "0", "to": str(2**53)}
    ),
    ("POST", "/api/v1/ingest"): Call(_device_upload(200), "samples"),
    ("GET", "/api/v1/torque"): Call(_device_upload(200), query={"session": "1"}),
    ("POST", "/api/v1/torque"): Call(_device_upload(200), query={"session": "1"}),
    ("POST", "/api/v1/vehicles"): Call(_signed_in(201), {"name": "Another car"}),
    ("PATCH", "/api/v1/me/preferences"): Call(_signed_in(200), {"units": "metric"}),
    ("PATCH", "/api/v1/vehicles/{vehicle_id}"): Call(_owner_only(200), {"fuel_type": "petrol"}),
    ("POST", "/api/v1/vehicles/{vehicle_id}/devices"): Call(_owner_only(201), {"name": "Pi 2"}),
    ("POST", "/api/v1/vehicles/{vehicle_id}/shares"): Call(
        _owner_only(202), {"email": "xavier@example.com"}
    ),
    # Each on an invitation of its own (see _call): accepting shares a vehicle no other route uses.
    ("POST", "/api/v1/invitations/{invitation_id}/accept"): Call(_invitee(200)),
    ("POST", "/api/v1/invitations/{invitation_id}/decline"): Call(_invitee(204)),
    ("POST", "/api/v1/vehicles/{vehicle_id}/dtcs/clear"): Call(_owner_only(202), {"confirm": True}),
    ("POST", "/api/v1/vehicles/{vehicle_id}/alert-rules"): Call(
        _owner_only(201),
        {"name": "Slow", "kind": "threshold", "pid": "SPEED", "op": "below", "threshold": 5},
    ),
    ("PATCH", "/api/v1/vehicles/{vehicle_id}/alert-rules/{rule_id}"): Call(
        _owner_only(200), {"enabled": True}
    ),
    ("POST", "/api/v1/alerts/{alert_id}/acknowledge"): Call(_owner_only(200)),
    # A log file is the body; a dry run stores nothing.
    ("POST", "/api/v1/vehicles/{vehicle_id}/imports"): Call(
        _owner_only(200),
        b"time,RPM\n2026-12-01T10:00:00Z,800\n",
        query={"format": "csv", "dry_run": "true"},
    ),
    # Destructive from here on; each on something of its own, so the rest stays.
    ("DELETE", "/api/v1/vehicles/{vehicle_id}/alert-rules/{rule_id}"): Call(_owner_only(204)),
    ("DELETE", "/api/v1/vehicles/{vehicle_id}/shares/{user_id}"): Call(_owner_only(204)),
    ("DELETE", "/api/v1/vehicles/{vehicle_id}/invitations/{invitation_id}"): Call(_owner_only(204)),
    # The viewer never sees the vehicle's devices (their list is the owner's): not found.
    ("POST", "/api/v1/devices/{device_id}/revoke"): Call({**_owner_only(200), "viewer": 404}),
    ("DELETE", "/api/v1/vehicles/{vehicle_id}"): Call(_owner_only(204)),
    ("POST", "/api/v1/auth/logout"): Call(_signed_in(204)),
}
WEBSOCKETS = {"/api/v1/streams/ws", "/api/v1/bridge/ws"}


def _document_routes(app: FastAPI) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }


def _websocket_paths(app: FastAPI) -> set[str]:
    """Every WebSocket route of the app, however its routers were included."""
    paths: set[str] = set()

    def walk(routes: Iterable[object]) -> None:
        for route in routes:
            if isinstance(route, WebSocketRoute):
                paths.add(route.path)
            # FastAPI keeps an included router's routes behind the include, with their prefix.
            contexts = getattr(route, "effective_route_contexts", None)
            if contexts is not None:
                walk(context.starlette_route for context in contexts())

    walk(app.router.routes)
    return paths


def test_every_route_is_classified(app: FastAPI) -> None:
    assert _document_routes(app) == set(MATRIX), "classify every route in MATRIX"
    assert _websocket_paths(app) == WEBSOCKETS, "classify every WebSocket route"
    for call in MATRIX.values():
        assert set(call.expected) == set(PRINCIPALS)


# -- the world ------------------------------------------------------------------------------


@dataclass
class Ids:
    vehicle: int  # the owner's, shared with the viewer
    spare_vehicle: int  # the owner's, shared with the viewer: for DELETE
    invited_vehicle: int  # the owner's, which the other user is invited to
    other_vehicle: int  # the other user's
    trip: int
    rule: int
    spare_rule: int  # for DELETE
    alert: int
    spare_device: int  # for revoke
    second_viewer: int  # for DELETE share
    # Invitations of the owner's: to the other user, to accept (a vehicle of its own) and to
    # decline; to an email with no account, to withdraw.
    invitations: dict[str, int]


@dataclass
class World2:
    served: Served
    ids: Ids
    clients: dict[str, httpx.AsyncClient]
    cookies: dict[str, str]
    tokens: dict[str, str]

    def url(self, path: str) -> str:
        ids = self.ids
        targets = {
            "vehicle_id": ids.vehicle,
            "trip_id": ids.trip,
            "rule_id": ids.rule,
            "alert_id": ids.alert,
            "device_id": ids.spare_device,
            "user_id": ids.second_viewer,
        }
        for name, value in targets.items():
            path = path.replace("{" + name + "}", str(value))
        return path


async def _build(served: Served) -> World2:
    app = served.app
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as setup:
        world = World(app, setup)
        owner = await world.user("alice@example.com")
        other = await world.user("bob@example.com")
        await world.user("root@example.com", admin=True)
        viewer = await world.user("vera@example.com")
        second_viewer = await world.user("walt@example.com")
        await world.user("xavier@example.com")
        vehicle = await world.vehicle(owner, OWNER_NAME, OWNER_VIN)
        spare_vehicle = await world.vehicle(owner, OWNER_NAME)
        invited_vehicle = await world.vehicle(owner, OWNER_NAME)
        other_vehicle = await world.vehicle(other, "Bob's car")
        _, token = await world.device(vehicle, "pi")
        revoked_id, revoked = await world.device(vehicle, "old pi")
        spare_device, _ = await world.device(vehicle, "spare pi")
        await world.device(other_vehicle, "bob's pi")
    async with app.state.obd2.sessionmaker() as session:
        for vid, uid in ((vehicle, viewer), (spare_vehicle, viewer), (vehicle, second_viewer)):
            session.add(VehicleShare(vehicle_id=vid, user_id=uid))
        invitations = {
            "accept": ShareInvitation(
                vehicle_id=invited_vehicle, invited_by=owner, email="bob@example.com"
            ),
            "decline": ShareInvitation(
                vehicle_id=vehicle, invited_by=owner, email="bob@example.com"
            ),
            "withdraw": ShareInvitation(
                vehicle_id=vehicle, invited_by=owner, email="yvonne@example.com"
            ),
        }
        session.add_all(invitations.values())
        device = await session.get(Device, revoked_id)
        assert device is not None
        device.revoked_at = utcnow()
        rules = [_rule(vehicle), _rule(vehicle)]
        session.add_all(rules)
        now = int(time.time() * 1000)
        trip = Trip(
            vehicle_id=vehicle,
            start_ts=now - 60_000,
            end_ts=now,
            distance_km=1.0,
            distance_source="speed",
            moving_s=60,
            idle_s=0,
            sample_count=2,
            track_points=2,
            state="{}",
        )
        session.add(trip)
        await session.flush()
        session.add_all(
            [TripPoint(trip_id=trip.id, ts=now - 60_000 + n, lat=48.1, lon=11.5) for n in (0, 1)]
        )
        alert = Alert(
            vehicle_id=vehicle,
            rule_id=rules[0].id,
            rule_name=OWNER_RULE,
            kind="threshold",
            subject="RPM",
            message="RPM above 6000",
            value=6500,
            started_ts=now - 1000,
            fired_ts=now,
        )
        session.add(alert)
        await session.commit()
        ids = Ids(
            vehicle=vehicle,
            spare_vehicle=spare_vehicle,
            invited_vehicle=invited_vehicle,
            other_vehicle=other_vehicle,
            trip=trip.id,
            rule=rules[0].id,
            spare_rule=rules[1].id,
            alert=alert.id,
            spare_device=spare_device,
            second_viewer=second_viewer,
            invitations={name: i.id for name, i in invitations.items()},
        )
    emails = {"owner": "alice", "other": "bob", "admin": "root", "viewer": "vera"}
    clients: dict[str, httpx.AsyncClient] = {}
    cookies: dict[str, str] = {}
    tokens = {"device": token, "revoked": revoked}
    for principal in PRINCIPALS:
        client = httpx.AsyncClient(base_url=served.url, timeout=30)
        if principal in emails:
            login = await client.post(
                "/api/v1/auth/login",
                json={"email": f"{emails[principal]}@example.com", "password": PASSWORD},
            )
            assert login.status_code == 200, login.text
            client.headers["X-CSRF-Token"] = login.json()["csrf_token"]
            cookies[principal] = login.cookies["obd2_session"]
        elif principal in tokens:
            client.headers["Authorization"] = f"Bearer {tokens[principal]}"
        clients[principal] = client
    # The device reports in, so that a DTC clear has an agent to go to.
    sent = await clients["device"].post("/api/v1/ingest", json=_samples(1))
    assert sent.status_code == 200, sent.text
    return World2(served, ids, clients, cookies, tokens)


def _rule(vehicle_id: int) -> AlertRule:
    return AlertRule(
        vehicle_id=vehicle_id,
        name=OWNER_RULE,
        kind="threshold",
        pid="RPM",
        op="above",
        threshold=6000,
        webhook_url="https://hooks.example.com/alice-secret-hook",
        webhook_secret="alice-webhook-secret-0123456789",
    )


def _samples(seq: int) -> dict[str, Any]:
    return {"samples": [{"seq": seq, "ts": int(time.time() * 1000), "pid": "RPM", "value": 900}]}


@pytest.fixture
async def world2(served: Served) -> AsyncIterator[World2]:
    built = await _build(served)
    try:
        yield built
    finally:
        for client in built.clients.values():
            await client.aclose()


# -- the walk -------------------------------------------------------------------------------


async def _call(
    world: World2, principal: str, method: str, path: str, call: Call
) -> httpx.Response:
    client = world.clients[principal]
    url = world.url(path)
    if method == "DELETE" and path == "/api/v1/vehicles/{vehicle_id}":
        url = f"/api/v1/vehicles/{world.ids.spare_vehicle}"
    if "{invitation_id}" in path:
        action = "withdraw" if method == "DELETE" else path.rsplit("/", 1)[1]
        url = url.replace("{invitation_id}", str(world.ids.invitations[action]))
    if method == "DELETE" and path.endswith("/alert-rules/{rule_id}"):
        url = url.removesuffix(f"/{world.ids.rule}") + f"/{world.ids.spare_rule}"
    query = dict(call.query or {})
    if path == "/api/v1/torque" and principal in world.tokens:
        query["token"] = world.tokens[principal]  # Torque cannot send headers
    body = call.body
    if body == "samples":
        body = _samples(time.time_ns() // 1000)
    elif body == "login":
        # An address per caller: the same one failing seven times would be rate-limited.
        body = {"email": f"nobody-{principal}@example.com", "password": "not a password"}
    sent = {"content": body} if isinstance(body, bytes) else {"json": body}
    request = client.build_request(method, url, params=query, **sent)
    response = await client.send(request, stream=True)
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        await response.aclose()  # a live stream never ends: its status is the answer
        return response
    await response.aread()
    return response


# The webhook's URL and secret are the owner's credentials: not even a viewer sees them.
WEBHOOK = ("alice-secret-hook", "alice-webhook-secret")
SECRETS = (OWNER_NAME, OWNER_VIN, OWNER_RULE, "alice@example.com", "RPM above 6000", *WEBHOOK)


async def test_every_route_as_every_principal(world2: World2) -> None:
    # Each route is called by the owner last, so what a refused call would have changed is
    # still there to be changed by the one allowed to.
    order = [p for p in PRINCIPALS if p != "owner"] + ["owner"]
    wrong = []
    for (method, path), call in MATRIX.items():
        for principal in order:
            response = await _call(world2, principal, method, path, call)
            expected = call.expected[principal]
            if response.status_code != expected:
                wrong.append((principal, method, path, expected, response.status_code))
                continue
            streamed = "event-stream" in response.headers.get("content-type", "")
            text = "" if streamed else response.text
            # An invitation shows its invitee (the other user) the vehicle and who invites.
            invited = principal == "other" and path.startswith("/api/v1/invitations")
            if principal in {"other", "admin", "anonymous", "device", "revoked"} and not invited:
                for secret in SECRETS:
                    assert secret not in text, (principal, method, path, secret)
            if principal == "viewer":
                for secret in WEBHOOK:
                    assert secret not in text, (principal, method, path, secret)
            if response.status_code >= 400:
                assert response.json()["detail"], (principal, method, path)
    assert wrong == [], "\n".join(map(str, wrong))


async def test_lists_hold_only_what_is_yours(world2: World2) -> None:
    mine = {v["id"] for v in (await world2.clients["owner"].get("/api/v1/vehicles")).json()}
    theirs = {v["id"] for v in (await world2.clients["other"].get("/api/v1/vehicles")).json()}
    admins = {v["id"] for v in (await world2.clients["admin"].get("/api/v1/vehicles")).json()}
    shared = (await world2.clients["viewer"].get("/api/v1/vehicles")).json()
    ids = world2.ids
    assert mine == {ids.vehicle, ids.spare_vehicle, ids.invited_vehicle}
    assert theirs == {ids.other_vehicle}
    assert admins == set()
    assert {(v["id"], v["role"]) for v in shared} == {
        (ids.vehicle, "viewer"), (ids.spare_vehicle, "viewer")
    }  # fmt: skip


# -- WebSockets -----------------------------------------------------------------------------


def _ws_headers(world: World2, principal: str) -> dict[str, str]:
    if principal in world.cookies:
        return {"Cookie": f"obd2_session={world.cookies[principal]}"}
    if principal in world.tokens:
        return {"Authorization": f"Bearer {world.tokens[principal]}"}
    return {}


async def _refused(url: str, headers: dict[str, str]) -> bool:
    try:
        async with connect(url, additional_headers=headers, open_timeout=10) as ws:
            await asyncio.wait_for(ws.recv(), 10)
    except (InvalidStatus, ConnectionClosed):
        return True
    return False


async def test_browser_socket_as_every_principal(world2: World2) -> None:
    url = f"{world2.served.ws_url}/api/v1/streams/ws"
    subscribe = json.dumps({"type": "subscribe", "vehicle_id": world2.ids.vehicle})
    answers = {}
    for principal in PRINCIPALS:
        headers = _ws_headers(world2, principal)
        if principal not in USERS:
            answers[principal] = "refused" if await _refused(url, headers) else "accepted"
            continue
        async with connect(url, additional_headers=headers) as ws:
            await ws.send(subscribe)
            reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
            answers[principal] = reply["type"]
            if reply["type"] == "error":
                assert reply["detail"] == "vehicle not found"
    assert answers == {
        "anonymous": "refused", "owner": "subscribed", "viewer": "subscribed",
        "other": "error", "admin": "error", "device": "refused", "revoked": "refused",
    }  # fmt: skip


async def test_bridge_socket_as_every_principal(world2: World2) -> None:
    url = f"{world2.served.ws_url}/api/v1/bridge/ws"
    answers = {}
    for principal in PRINCIPALS:
        headers = _ws_headers(world2, principal)
        if principal != "device":
            answers[principal] = "refused" if await _refused(url, headers) else "accepted"
            continue
        async with connect(url, additional_headers=headers) as ws:
            seq = time.time_ns() // 1000
            await ws.send(json.dumps({"type": "batch", "id": 7, **_samples(seq)}))
            answers[principal] = json.loads(await asyncio.wait_for(ws.recv(), 10))["type"]
    assert answers == {**dict.fromkeys(PRINCIPALS, "refused"), "device": "ack"}


async def test_revoking_a_device_closes_its_open_socket(world2: World2) -> None:
    url = f"{world2.served.ws_url}/api/v1/bridge/ws"
    headers = {"Authorization": f"Bearer {world2.tokens['device']}"}
    async with connect(url, additional_headers=headers) as ws:
        await ws.send(json.dumps({"type": "batch", "id": 1, **_samples(time.time_ns() // 1000)}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "ack"
        devices = await world2.clients["owner"].get(
            f"/api/v1/vehicles/{world2.ids.vehicle}/devices"
        )
        device_id = next(d["id"] for d in devices.json() if d["name"] == "pi")
        revoked = await world2.clients["owner"].post(f"/api/v1/devices/{device_id}/revoke")
        assert revoked.status_code == 200
        # Nothing more is sent on the socket: the server closes it by itself.
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401
    answer = await world2.clients["device"].post("/api/v1/ingest", json=_samples(2))
    assert answer.status_code == 401


async def test_webhook_credentials_are_the_owners(world2: World2) -> None:
    url = f"/api/v1/vehicles/{world2.ids.vehicle}/alert-rules/{world2.ids.rule}"
    owners = (await world2.clients["owner"].get(url)).json()
    viewers = (await world2.clients["viewer"].get(url)).json()
    assert owners["webhook_secret"] == "alice-webhook-secret-0123456789"
    assert owners["webhook_url"].endswith("/alice-secret-hook")
    assert (viewers["webhook_secret"], viewers["webhook_url"]) == (None, None)
    assert {k: v for k, v in viewers.items() if not k.startswith("webhook")} == {
        k: v for k, v in owners.items() if not k.startswith("webhook")
    }
