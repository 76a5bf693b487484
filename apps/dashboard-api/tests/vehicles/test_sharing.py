import time

import httpx

from tests.conftest import World


async def test_owner_shares_read_only_and_can_withdraw(world: World) -> None:
    owner_id = await world.user("owner@example.com")
    await world.user("friend@example.com")
    await world.user("stranger@example.com")
    vehicle = await world.vehicle(owner_id, "Shared car", vin="WP0ZZZ99ZTS390000")
    _, token = await world.device(vehicle)
    now = int(time.time() * 1000)
    ingest = await world.client.post(
        "/api/v1/ingest",
        json={"samples": [{"seq": 1, "ts": now, "pid": "RPM", "value": 1000.0}]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert ingest.status_code == 200
    owner = await world.login("owner@example.com")
    friend = await world.login("friend@example.com")
    stranger = await world.login("stranger@example.com")
    try:
        assert (await friend.get(f"/api/v1/vehicles/{vehicle}")).status_code == 404
        shared = await owner.post(
            f"/api/v1/vehicles/{vehicle}/shares", json={"email": "Friend@Example.com"}
        )
        assert shared.status_code == 201, shared.text
        friend_id = shared.json()["user_id"]
        assert shared.json()["email"] == "friend@example.com"
        shares = (await owner.get(f"/api/v1/vehicles/{vehicle}/shares")).json()
        assert [s["email"] for s in shares] == ["friend@example.com"]

        listed = (await friend.get("/api/v1/vehicles")).json()
        assert [(v["id"], v["role"]) for v in listed] == [(vehicle, "viewer")]
        assert listed[0]["vin_info"]["maker"] == "Porsche"
        history = await friend.get(
            f"/api/v1/vehicles/{vehicle}/samples",
            params={"pid": "RPM", "from": now - 1000, "to": now + 1000},
        )
        assert history.status_code == 200
        assert history.json()["points"][0][1] == 1000.0
        assert (await friend.get(f"/api/v1/vehicles/{vehicle}/dtcs")).status_code == 200

        # Read-only: every change is refused, plainly.
        refused = [
            await friend.patch(f"/api/v1/vehicles/{vehicle}", json={"name": "Mine now"}),
            await friend.delete(f"/api/v1/vehicles/{vehicle}"),
            await friend.post(f"/api/v1/vehicles/{vehicle}/devices", json={"name": "x"}),
            await friend.get(f"/api/v1/vehicles/{vehicle}/devices"),
            await friend.post(f"/api/v1/vehicles/{vehicle}/dtcs/clear", json={"confirm": True}),
            await friend.post(
                f"/api/v1/vehicles/{vehicle}/shares", json={"email": "stranger@example.com"}
            ),
        ]
        assert [r.status_code for r in refused] == [403] * len(refused)
        assert "read-only" in refused[0].json()["detail"]
        assert (await stranger.get(f"/api/v1/vehicles/{vehicle}")).status_code == 404
        assert (await stranger.get(f"/api/v1/vehicles/{vehicle}/shares")).status_code == 404

        bad = await owner.post(f"/api/v1/vehicles/{vehicle}/shares", json={"email": "x@nowhere"})
        assert bad.status_code == 422
        self_share = await owner.post(
            f"/api/v1/vehicles/{vehicle}/shares", json={"email": "owner@example.com"}
        )
        assert self_share.status_code == 422

        gone = await owner.delete(f"/api/v1/vehicles/{vehicle}/shares/{friend_id}")
        assert gone.status_code == 204
        assert (await friend.get(f"/api/v1/vehicles/{vehicle}")).status_code == 404
        again = await owner.delete(f"/api/v1/vehicles/{vehicle}/shares/{friend_id}")
        assert again.status_code == 404
    finally:
        for c in (owner, friend, stranger):
            await c.aclose()


async def test_vin_info_is_decoded(alice: httpx.AsyncClient) -> None:
    created = await alice.post(
        "/api/v1/vehicles", json={"name": "Accord", "vin": "1hgcm82633a004352"}
    )
    assert created.status_code == 201, created.text
    info = created.json()["vin_info"]
    assert created.json()["vin"] == "1HGCM82633A004352"
    assert info == {
        "wmi": "1HG",
        "maker": "Honda",
        "region": "North America",
        "model_year": 2003,
    }
    no_vin = await alice.post("/api/v1/vehicles", json={"name": "Old"})
    assert no_vin.json()["vin_info"] is None
