import asyncio
import json
import time
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from tests.conftest import Served, World


def _report(ts: int, stored: list[str], pending: list[str] = (), **extra: Any) -> str:  # type: ignore[assignment]
    return json.dumps(
        {
            "type": "dtcs",
            "ts": ts,
            "stored": [{"code": c} for c in stored],
            "pending": [{"code": c} for c in pending],
            "permanent": [],
            **extra,
        }
    )


async def _recv(ws: ClientConnection, kind: str) -> dict[str, Any]:
    async def find() -> dict[str, Any]:
        while True:
            message: dict[str, Any] = json.loads(await ws.recv())
            if message["type"] == kind:
                return message

    return await asyncio.wait_for(find(), 15)


async def _setup(served: Served) -> tuple[int, str, httpx.AsyncClient, httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=served.app)
    setup = httpx.AsyncClient(transport=transport, base_url="http://t")
    world = World(served.app, setup)
    user = await world.user("dtc@example.com")
    await world.user("other@example.com")
    vehicle = await world.vehicle(user)
    _, token = await world.device(vehicle)
    owner = await world.login("dtc@example.com")
    other = await world.login("other@example.com")
    await setup.aclose()
    return vehicle, token, owner, other


async def test_reports_become_a_history_and_clearing_is_a_confirmed_round_trip(
    served: Served,
) -> None:
    vehicle, token, owner, other = await _setup(served)
    url = f"{served.ws_url}/api/v1/bridge/ws"
    t0 = int(time.time() * 1000)
    try:
        async with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
            await ws.send(
                _report(
                    t0,
                    ["P0301", "P1234"],
                    ["P0420"],
                    freeze_dtc="P0301",
                    freeze_frame={"RPM": 2100.0, "COOLANT_TEMP": 92.0},
                )
            )
            await ws.send(_report(t0 + 1000, ["P0301", "P1234"]))  # P0420 pending went away
            for _ in range(100):
                rows = (await owner.get(f"/api/v1/vehicles/{vehicle}/dtcs")).json()
                if any(r["cleared_at"] for r in rows):
                    break
                await asyncio.sleep(0.05)
            by_code = {r["code"]: r for r in rows}
            assert set(by_code) == {"P0301", "P1234", "P0420"}
            misfire = by_code["P0301"]
            assert misfire["kind"] == "stored"
            assert misfire["description"] == "Cylinder 1 misfire detected"
            assert (misfire["first_seen"], misfire["last_seen"]) == (t0, t0 + 1000)
            assert misfire["freeze_frame"]["values"]["RPM"] == 2100.0
            assert misfire["cleared_at"] is None
            assert by_code["P1234"]["manufacturer_specific"] is True
            assert (by_code["P0420"]["cleared_at"], by_code["P0420"]["clear_reason"]) == (
                t0 + 1000,
                "gone",
            )
            assert [r["code"] for r in rows][-1] == "P0420"  # active ones first

            assert (await other.get(f"/api/v1/vehicles/{vehicle}/dtcs")).status_code == 404
            unconfirmed = await owner.post(f"/api/v1/vehicles/{vehicle}/dtcs/clear", json={})
            assert unconfirmed.status_code == 422
            refused = await owner.post(
                f"/api/v1/vehicles/{vehicle}/dtcs/clear", json={"confirm": False}
            )
            assert refused.status_code == 422
            queued = await owner.post(
                f"/api/v1/vehicles/{vehicle}/dtcs/clear", json={"confirm": True}
            )
            assert queued.status_code == 202, queued.text
            command_id = queued.json()["id"]

            command = await _recv(ws, "clear_dtcs")
            assert command["id"] == command_id
            await ws.send(
                json.dumps(
                    {
                        "type": "command_result",
                        "id": command_id,
                        "command": "clear_dtcs",
                        "ok": True,
                        "detail": "codes cleared",
                    }
                )
            )
            for _ in range(100):
                commands = (await owner.get(f"/api/v1/vehicles/{vehicle}/commands")).json()
                if commands[0]["completed_at"]:
                    break
                await asyncio.sleep(0.05)
            assert commands[0]["ok"] is True
            rows = (await owner.get(f"/api/v1/vehicles/{vehicle}/dtcs")).json()
            cleared = {r["code"]: r for r in rows}
            assert cleared["P0301"]["clear_reason"] == "cleared"
            assert cleared["P0301"]["cleared_by"] == "dtc@example.com"
            # The code comes back later: a new spell, the old one stays in the history.
            await ws.send(_report(int(time.time() * 1000) + 5000, ["P0301"]))
            for _ in range(100):
                rows = (await owner.get(f"/api/v1/vehicles/{vehicle}/dtcs")).json()
                if len([r for r in rows if r["code"] == "P0301"]) == 2:
                    break
                await asyncio.sleep(0.05)
            spells = [r for r in rows if r["code"] == "P0301"]
            assert len(spells) == 2
            assert spells[0]["cleared_at"] is None
    finally:
        await owner.aclose()
        await other.aclose()


async def test_clearing_needs_a_device(world: World) -> None:
    user = await world.user("nodevice@example.com")
    vehicle = await world.vehicle(user)
    owner = await world.login("nodevice@example.com")
    response = await owner.post(f"/api/v1/vehicles/{vehicle}/dtcs/clear", json={"confirm": True})
    await owner.aclose()
    assert response.status_code == 409
    assert "no active device" in response.json()["detail"]
