import hashlib

import httpx
from sqlalchemy import text

from obd2_dashboard.devices.service import authenticate_device
from tests.conftest import World


async def _vehicle(alice: httpx.AsyncClient) -> int:
    response = await alice.post("/api/v1/vehicles", json={"name": "Car"})
    assert response.status_code == 201
    vehicle_id: int = response.json()["id"]
    return vehicle_id


async def test_token_is_shown_once_and_only_its_hash_is_stored(
    world: World, alice: httpx.AsyncClient
) -> None:
    vehicle_id = await _vehicle(alice)
    created = await alice.post(f"/api/v1/vehicles/{vehicle_id}/devices", json={"name": "Pi"})
    assert created.status_code == 201, created.text
    device = created.json()
    token = device["token"]
    assert token.startswith("obd2d_")
    assert len(token) >= 40
    assert device["token_prefix"] == token[:12]
    assert device["revoked_at"] is None
    assert device["vehicle_id"] == vehicle_id
    assert device["api_url"] is None  # no PUBLIC_URL here: the UI warns (tests/web)

    listed = await alice.get(f"/api/v1/vehicles/{vehicle_id}/devices")
    assert listed.status_code == 200
    [shown] = listed.json()
    assert "token" not in shown
    assert token not in listed.text
    assert shown["id"] == device["id"]

    async with world.app.state.obd2.engine.connect() as connection:
        row = (
            await connection.execute(
                text("SELECT * FROM devices WHERE id = :id"), {"id": device["id"]}
            )
        ).one()
    stored = row._asdict()
    assert bytes(stored["token_hash"]) == hashlib.sha256(token.encode()).digest()
    for value in stored.values():
        as_text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
        assert token not in as_text
        assert token[12:] not in as_text


async def test_two_devices_get_different_tokens(alice: httpx.AsyncClient) -> None:
    vehicle_id = await _vehicle(alice)
    url = f"/api/v1/vehicles/{vehicle_id}/devices"
    first = (await alice.post(url, json={"name": "A"})).json()
    second = (await alice.post(url, json={"name": "A"})).json()
    assert first["token"] != second["token"]
    assert [d["id"] for d in (await alice.get(url)).json()] == [first["id"], second["id"]]


async def test_token_authenticates_until_revoked(world: World, alice: httpx.AsyncClient) -> None:
    vehicle_id = await _vehicle(alice)
    device = (
        await alice.post(f"/api/v1/vehicles/{vehicle_id}/devices", json={"name": "Pi"})
    ).json()
    token = device["token"]
    async with world.app.state.obd2.sessionmaker() as session:
        found = await authenticate_device(session, token)
        assert found is not None
        assert found.id == device["id"]
        assert await authenticate_device(session, token[:-1]) is None
        assert await authenticate_device(session, token + "x") is None
        assert await authenticate_device(session, "") is None
        assert await authenticate_device(session, "obd2d_" + "A" * 5000) is None

    revoked = await alice.post(f"/api/v1/devices/{device['id']}/revoke")
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    again = await alice.post(f"/api/v1/devices/{device['id']}/revoke")
    assert again.status_code == 200
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]

    async with world.app.state.obd2.sessionmaker() as session:
        assert await authenticate_device(session, token) is None
    listed = (await alice.get(f"/api/v1/vehicles/{vehicle_id}/devices")).json()
    assert listed[0]["revoked_at"] is not None


async def test_revoking_one_device_leaves_the_other(world: World, alice: httpx.AsyncClient) -> None:
    vehicle_id = await _vehicle(alice)
    url = f"/api/v1/vehicles/{vehicle_id}/devices"
    kept = (await alice.post(url, json={"name": "kept"})).json()
    gone = (await alice.post(url, json={"name": "gone"})).json()
    assert (await alice.post(f"/api/v1/devices/{gone['id']}/revoke")).status_code == 200
    async with world.app.state.obd2.sessionmaker() as session:
        assert await authenticate_device(session, gone["token"]) is None
        found = await authenticate_device(session, kept["token"])
        assert found is not None
        assert found.id == kept["id"]


async def test_other_users_devices_are_404(world: World, alice: httpx.AsyncClient) -> None:
    bob_id = await world.user("bob@example.com")
    bob_vehicle = await world.vehicle(bob_id)
    bob_device, bob_token = await world.device(bob_vehicle)
    assert (await alice.get(f"/api/v1/vehicles/{bob_vehicle}/devices")).status_code == 404
    create = await alice.post(f"/api/v1/vehicles/{bob_vehicle}/devices", json={"name": "x"})
    assert create.status_code == 404
    revoke = await alice.post(f"/api/v1/devices/{bob_device}/revoke")
    assert revoke.status_code == 404
    assert revoke.json() == {"detail": f"device {bob_device} not found"}
    async with world.app.state.obd2.sessionmaker() as session:
        assert await authenticate_device(session, bob_token) is not None

    # and the other way round
    vehicle_id = await _vehicle(alice)
    alice_device = (
        await alice.post(f"/api/v1/vehicles/{vehicle_id}/devices", json={"name": "Pi"})
    ).json()
    bob = await world.login("bob@example.com")
    try:
        assert (await bob.get(f"/api/v1/vehicles/{vehicle_id}/devices")).status_code == 404
        assert (await bob.post(f"/api/v1/devices/{alice_device['id']}/revoke")).status_code == 404
    finally:
        await bob.aclose()


async def test_device_name_is_validated(alice: httpx.AsyncClient) -> None:
    vehicle_id = await _vehicle(alice)
    url = f"/api/v1/vehicles/{vehicle_id}/devices"
    for body in ({}, {"name": ""}, {"name": "a\x00b"}, {"name": "x" * 101}, {"name": 5}):
        response = await alice.post(url, json=body)
        assert response.status_code == 422, body
        assert "detail" in response.json()
    assert (await alice.get(url)).json() == []
