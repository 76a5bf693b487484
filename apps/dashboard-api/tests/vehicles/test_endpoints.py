import asyncio

import httpx
import pytest
from sqlalchemy import func, insert, select

from obd2_dashboard.models import Device, Sample, Vehicle
from tests.conftest import World

VIN = "1HGCM82633A004352"


async def test_create_list_get_rename_delete(alice: httpx.AsyncClient) -> None:
    assert (await alice.get("/api/v1/vehicles")).json() == []

    created = await alice.post("/api/v1/vehicles", json={"name": "  Family car ", "vin": VIN})
    assert created.status_code == 201, created.text
    vehicle = created.json()
    assert vehicle["name"] == "Family car"
    assert vehicle["vin"] == VIN
    assert vehicle["last_seen_at"] is None
    vehicle_id = vehicle["id"]

    listed = (await alice.get("/api/v1/vehicles")).json()
    assert [v["id"] for v in listed] == [vehicle_id]
    assert listed[0]["name"] == "Family car"

    got = await alice.get(f"/api/v1/vehicles/{vehicle_id}")
    assert got.status_code == 200
    assert got.json() == vehicle

    renamed = await alice.patch(f"/api/v1/vehicles/{vehicle_id}", json={"name": "Van"})
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Van"
    assert renamed.json()["vin"] == VIN  # untouched when not sent
    assert (await alice.get(f"/api/v1/vehicles/{vehicle_id}")).json()["name"] == "Van"

    cleared = await alice.patch(f"/api/v1/vehicles/{vehicle_id}", json={"vin": None})
    assert cleared.json()["vin"] is None
    assert cleared.json()["name"] == "Van"

    deleted = await alice.delete(f"/api/v1/vehicles/{vehicle_id}")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert (await alice.get(f"/api/v1/vehicles/{vehicle_id}")).status_code == 404
    assert (await alice.get("/api/v1/vehicles")).json() == []
    assert (await alice.delete(f"/api/v1/vehicles/{vehicle_id}")).status_code == 404


async def test_patch_with_null_name_keeps_the_name(alice: httpx.AsyncClient) -> None:
    vehicle_id = (await alice.post("/api/v1/vehicles", json={"name": "Car"})).json()["id"]
    response = await alice.patch(f"/api/v1/vehicles/{vehicle_id}", json={"name": None})
    assert response.status_code == 200
    assert response.json()["name"] == "Car"


async def test_vin_is_normalised_to_capitals(alice: httpx.AsyncClient) -> None:
    response = await alice.post(
        "/api/v1/vehicles", json={"name": "Car", "vin": " 1hgcm82633a004352 "}
    )
    assert response.status_code == 201
    assert response.json()["vin"] == VIN


@pytest.mark.parametrize(
    "vin",
    [
        "1HGCM82633A00435",  # 16 characters
        "1HGCM82633A0043521",  # 18 characters
        "1HGCM82633A00435I",  # I is not allowed
        "1HGCM82633A00435O",  # nor O
        "1HGCM82633A00435Q",  # nor Q
        "1hgcm82633a00435o",  # in either case
        "1HGCM82633A00435-",
        "1HGCM82633A00435\u00e9",
        "",
        "1HGCM82633A0043\x0052",
    ],
)
async def test_bad_vin_is_422(alice: httpx.AsyncClient, vin: str) -> None:
    response = await alice.post("/api/v1/vehicles", json={"name": "Car", "vin": vin})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("invalid request: body.vin")
    vehicle_id = (await alice.post("/api/v1/vehicles", json={"name": "Car"})).json()["id"]
    patched = await alice.patch(f"/api/v1/vehicles/{vehicle_id}", json={"vin": vin})
    assert patched.status_code == 422
    assert (await alice.get(f"/api/v1/vehicles/{vehicle_id}")).json()["vin"] is None


@pytest.mark.parametrize("name", ["", "   ", "x" * 101, "bad\x00name", "tab\there", "bell\x07"])
async def test_bad_name_is_422(alice: httpx.AsyncClient, name: str) -> None:
    response = await alice.post("/api/v1/vehicles", json={"name": name})
    assert response.status_code == 422
    assert "body.name" in response.json()["detail"]


async def test_names_may_be_any_printable_text(alice: httpx.AsyncClient) -> None:
    name = "Ma 2CV \u00e9t\u00e9 \U0001f697 \u65e5\u672c"
    response = await alice.post("/api/v1/vehicles", json={"name": name})
    assert response.status_code == 201
    assert response.json()["name"] == name


async def test_list_shows_only_own_vehicles_in_id_order(
    world: World, alice: httpx.AsyncClient
) -> None:
    bob = await world.user("bob@example.com")
    await world.vehicle(bob, "Bob's")
    first = (await alice.post("/api/v1/vehicles", json={"name": "One"})).json()["id"]
    second = (await alice.post("/api/v1/vehicles", json={"name": "Two"})).json()["id"]
    listed = (await alice.get("/api/v1/vehicles")).json()
    assert [v["id"] for v in listed] == [first, second]


async def test_another_users_vehicle_and_device_are_404_on_every_route(
    world: World, alice: httpx.AsyncClient
) -> None:
    bob = await world.user("bob@example.com")
    vehicle_id = await world.vehicle(bob, "Bob's car", VIN)
    device_id, _token = await world.device(vehicle_id)
    routes = [
        ("GET", f"/api/v1/vehicles/{vehicle_id}", None),
        ("PATCH", f"/api/v1/vehicles/{vehicle_id}", {"name": "Mine now"}),
        ("DELETE", f"/api/v1/vehicles/{vehicle_id}", None),
        ("GET", f"/api/v1/vehicles/{vehicle_id}/devices", None),
        ("POST", f"/api/v1/vehicles/{vehicle_id}/devices", {"name": "spy"}),
        ("POST", f"/api/v1/devices/{device_id}/revoke", None),
    ]
    for method, url, body in routes:
        response = await alice.request(method, url, json=body)
        assert response.status_code == 404, (method, url, response.text)
        assert "not found" in response.json()["detail"]
        missing = url.replace(f"/{vehicle_id}", "/999999").replace(f"/{device_id}/", "/999999/")
        absent = await alice.request(method, missing, json=body)
        # Someone else's and nobody's look the same.
        assert absent.status_code == 404
        assert absent.json()["detail"].split()[0] == response.json()["detail"].split()[0]

    async with world.app.state.obd2.sessionmaker() as session:
        vehicle = await session.get(Vehicle, vehicle_id)
        assert vehicle is not None
        assert vehicle.name == "Bob's car"
        device = await session.get(Device, device_id)
        assert device is not None
        assert device.revoked_at is None
        count = await session.scalar(select(func.count()).select_from(Device))
        assert count == 1


async def test_delete_removes_devices_and_samples(world: World, alice: httpx.AsyncClient) -> None:
    vehicle_id = (await alice.post("/api/v1/vehicles", json={"name": "Car"})).json()["id"]
    other_id = (await alice.post("/api/v1/vehicles", json={"name": "Other"})).json()["id"]
    device_id, _ = await world.device(vehicle_id)
    other_device, _ = await world.device(other_id)
    async with world.app.state.obd2.sessionmaker() as session:
        rows = [
            {"device_id": d, "seq": seq, "vehicle_id": v, "ts": 1_700_000_000_000 + seq,
             "pid": "RPM", "value": 800.0}
            for d, v in ((device_id, vehicle_id), (other_device, other_id))
            for seq in range(5)
        ]  # fmt: skip
        await session.execute(insert(Sample), rows)
        await session.commit()

    assert (await alice.delete(f"/api/v1/vehicles/{vehicle_id}")).status_code == 204

    async with world.app.state.obd2.sessionmaker() as session:
        assert await session.get(Device, device_id) is None
        left = (await session.execute(select(Sample.vehicle_id).distinct())).scalars().all()
        assert left == [other_id]
        assert await session.scalar(select(func.count()).select_from(Sample)) == 5
        assert await session.get(Device, other_device) is not None


@pytest.mark.parametrize(
    "vehicle_id", ["0", "-1", "abc", "1.5", str(10**30), str(2**63), str(2**53), "1e3"]
)
async def test_bad_vehicle_id_is_422(alice: httpx.AsyncClient, vehicle_id: str) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        body = {"name": "x"} if method == "PATCH" else None
        response = await alice.request(method, f"/api/v1/vehicles/{vehicle_id}", json=body)
        assert response.status_code == 422, (method, vehicle_id, response.text)
        assert "path.vehicle_id" in response.json()["detail"]


async def test_largest_id_is_a_plain_404(alice: httpx.AsyncClient) -> None:
    # 2**53 - 1: the largest id every JSON reader (and the OpenAPI document) holds exactly.
    response = await alice.get(f"/api/v1/vehicles/{2**53 - 1}")
    assert response.status_code == 404


async def test_concurrent_writes_all_land(alice: httpx.AsyncClient) -> None:
    # SQLite serialises writers: each request must wait its turn, not fail with "locked".
    created = await asyncio.gather(
        *(alice.post("/api/v1/vehicles", json={"name": f"Car {n}"}) for n in range(20))
    )
    assert [r.status_code for r in created] == [201] * 20
    renamed = await asyncio.gather(
        *(alice.patch(f"/api/v1/vehicles/{r.json()['id']}", json={"name": "x"}) for r in created)
    )
    assert [r.status_code for r in renamed] == [200] * 20
    listed = (await alice.get("/api/v1/vehicles")).json()
    assert len(listed) == 20
    assert {v["name"] for v in listed} == {"x"}
