import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.conftest import PASSWORD, Served, World
from tests.vehicles.test_sharing import share_and_accept


async def _recv(ws: ClientConnection, kind: str, timeout: float = 10) -> dict[str, Any]:
    async def find() -> dict[str, Any]:
        while True:
            message: dict[str, Any] = json.loads(await ws.recv())
            if message["type"] == kind:
                return message

    return await asyncio.wait_for(find(), timeout)


async def _world(served: Served) -> tuple[str, int, str, int]:
    transport = httpx.ASGITransport(app=served.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        world = World(served.app, c)
        alice = await world.user("ws-alice@example.com")
        bob = await world.user("ws-bob@example.com")
        vehicle = await world.vehicle(alice)
        bobs = await world.vehicle(bob)
        _, token = await world.device(vehicle)
        login = await c.post(
            "/api/v1/auth/login", json={"email": "ws-alice@example.com", "password": PASSWORD}
        )
        cookie = login.cookies["obd2_session"]
    return cookie, vehicle, token, bobs


async def test_browser_socket_subscribes_and_receives(served: Served) -> None:
    cookie, vehicle, token, bobs = await _world(served)
    url = f"{served.ws_url}/api/v1/streams/ws"
    async with connect(url, additional_headers={"Cookie": f"obd2_session={cookie}"}) as ws:
        await ws.send(json.dumps({"type": "subscribe", "vehicle_id": vehicle}))
        assert (await _recv(ws, "subscribed"))["vehicle_id"] == vehicle
        await ws.send(json.dumps({"type": "subscribe", "vehicle_id": bobs}))
        assert (await _recv(ws, "error"))["detail"] == "vehicle not found"
        for bad in ("not json", json.dumps({"type": "subscribe", "vehicle_id": "1"}), "[]"):
            await ws.send(bad)
            assert "expected" in (await _recv(ws, "error"))["detail"]
        await ws.send(b"\x00binary")
        assert "JSON text" in (await _recv(ws, "error"))["detail"]
        await ws.send("x" * 10_000)
        assert "larger" in (await _recv(ws, "error"))["detail"]

        async with httpx.AsyncClient(base_url=served.url) as http:
            response = await http.post(
                "/api/v1/ingest",
                json={
                    "samples": [
                        {"seq": 1, "ts": int(time.time() * 1000), "pid": "SPEED", "value": 42.5}
                    ]
                },
                headers={"Authorization": f"Bearer {token}"},
            )
            assert response.status_code == 200
        sample = await _recv(ws, "sample")
        assert sample["vehicle_id"] == vehicle
        assert (sample["pid"], sample["value"], sample["seq"]) == ("SPEED", 42.5, 1)
        await ws.send(json.dumps({"type": "unsubscribe", "vehicle_id": vehicle}))
        assert (await _recv(ws, "unsubscribed"))["vehicle_id"] == vehicle


async def test_browser_socket_requires_sign_in_and_same_origin(served: Served) -> None:
    cookie, _, _, _ = await _world(served)
    url = f"{served.ws_url}/api/v1/streams/ws"
    with pytest.raises((InvalidStatus, ConnectionClosed)):
        async with connect(url) as ws:
            await ws.recv()
    headers = {"Cookie": f"obd2_session={cookie}", "Origin": "https://evil.example"}
    with pytest.raises((InvalidStatus, ConnectionClosed)):
        async with connect(url, additional_headers=headers) as ws:
            await ws.recv()


async def test_browser_socket_follows_sign_out_and_withdrawn_shares(served: Served) -> None:
    # What ends them is the event, within the deadlines below: not the periodic re-check.
    served.app.state.obd2.settings.LIVE_ACCESS_RECHECK_S = 300
    _, vehicle, _, _ = await _world(served)
    async with httpx.AsyncClient(base_url=served.url) as owner:
        login = await owner.post(
            "/api/v1/auth/login", json={"email": "ws-alice@example.com", "password": PASSWORD}
        )
        owner.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        async with httpx.AsyncClient(base_url=served.url) as bobs_browser:
            bob = await bobs_browser.post(
                "/api/v1/auth/login", json={"email": "ws-bob@example.com", "password": PASSWORD}
            )
            bobs_browser.headers["X-CSRF-Token"] = bob.json()["csrf_token"]
            await share_and_accept(owner, bobs_browser, vehicle, "ws-bob@example.com")
        shares = (await owner.get(f"/api/v1/vehicles/{vehicle}/shares")).json()
        bob_cookie, bob_csrf = bob.cookies["obd2_session"], bob.json()["csrf_token"]
        url = f"{served.ws_url}/api/v1/streams/ws"
        async with connect(url, additional_headers={"Cookie": f"obd2_session={bob_cookie}"}) as ws:
            await ws.send(json.dumps({"type": "subscribe", "vehicle_id": vehicle}))
            await _recv(ws, "subscribed")
            withdrawn = await owner.delete(
                f"/api/v1/vehicles/{vehicle}/shares/{shares[0]['user_id']}"
            )
            assert withdrawn.status_code == 204, withdrawn.text
            lost = await _recv(ws, "error", timeout=3)
            assert (lost["vehicle_id"], lost["detail"]) == (vehicle, "vehicle not found")

            async with httpx.AsyncClient(
                base_url=served.url, cookies={"obd2_session": bob_cookie}
            ) as bobs_other_tab:
                out = await bobs_other_tab.post(
                    "/api/v1/auth/logout", headers={"X-CSRF-Token": bob_csrf}
                )
                assert out.status_code == 204, out.text
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 3)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 4401
