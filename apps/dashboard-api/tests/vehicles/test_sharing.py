import time

import httpx

from tests.conftest import World

SENT = {"detail": "invitation sent"}


async def share_and_accept(
    owner: httpx.AsyncClient, invitee: httpx.AsyncClient, vehicle: int, email: str
) -> None:
    """The owner invites ``email``; the invitee (signed in with it) accepts."""
    sent = await owner.post(f"/api/v1/vehicles/{vehicle}/shares", json={"email": email})
    assert sent.status_code == 202, sent.text
    mine = (await invitee.get("/api/v1/invitations")).json()
    invitation = next(i for i in mine if i["vehicle_id"] == vehicle)
    accepted = await invitee.post(f"/api/v1/invitations/{invitation['id']}/accept")
    assert accepted.status_code == 200, accepted.text
    assert (accepted.json()["id"], accepted.json()["role"]) == (vehicle, "viewer")


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
        await share_and_accept(owner, friend, vehicle, "Friend@Example.com")
        shares = (await owner.get(f"/api/v1/vehicles/{vehicle}/shares")).json()
        assert [s["email"] for s in shares] == ["friend@example.com"]
        friend_id = shares[0]["user_id"]

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

        bad = await owner.post(f"/api/v1/vehicles/{vehicle}/shares", json={"email": "x@@nowhere"})
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


async def test_sharing_says_the_same_whoever_the_email_is(world: World) -> None:
    owner_id = await world.user("owner@example.com")
    await world.user("friend@example.com")
    vehicle = await world.vehicle(owner_id, "Car")
    owner = await world.login("owner@example.com")
    url = f"/api/v1/vehicles/{vehicle}/shares"
    existing = await owner.post(url, json={"email": "friend@example.com"})
    missing = await owner.post(url, json={"email": "nobody@example.com"})
    again = await owner.post(url, json={"email": "FRIEND@example.com"})
    assert [r.status_code for r in (existing, missing, again)] == [202, 202, 202]
    assert {**existing.json(), "email": "…"} == {**missing.json(), "email": "…"}
    assert existing.json() == {**SENT, "email": "friend@example.com"}
    assert set(existing.headers) == set(missing.headers)
    # Nothing granted yet: pending invitations, one per email, for the owner to see.
    assert (await owner.get(url)).json() == []
    pending = (await owner.get(f"/api/v1/vehicles/{vehicle}/invitations")).json()
    assert [p["email"] for p in pending] == ["friend@example.com", "nobody@example.com"]


async def test_no_access_until_the_invitee_accepts(world: World) -> None:
    owner_id = await world.user("owner@example.com")
    await world.user("friend@example.com")
    await world.user("stranger@example.com")
    vehicle = await world.vehicle(owner_id, "Car")
    owner = await world.login("owner@example.com")
    friend = await world.login("friend@example.com")
    stranger = await world.login("stranger@example.com")
    sent = await owner.post(
        f"/api/v1/vehicles/{vehicle}/shares", json={"email": "friend@example.com"}
    )
    assert sent.status_code == 202, sent.text
    assert (await friend.get(f"/api/v1/vehicles/{vehicle}")).status_code == 404
    assert (await friend.get("/api/v1/vehicles")).json() == []
    assert (await friend.get(f"/api/v1/streams/vehicles/{vehicle}")).status_code == 404

    mine = (await friend.get("/api/v1/invitations")).json()
    assert [(i["vehicle_id"], i["vehicle_name"], i["invited_by"]) for i in mine] == [
        (vehicle, "Car", "owner@example.com")
    ]
    invitation = mine[0]["id"]
    # Someone else's invitation: not found, to accept or decline.
    assert (await stranger.get("/api/v1/invitations")).json() == []
    for action in ("accept", "decline"):
        other = await stranger.post(f"/api/v1/invitations/{invitation}/{action}")
        assert other.status_code == 404
    assert (await stranger.get(f"/api/v1/vehicles/{vehicle}")).status_code == 404

    accepted = await friend.post(f"/api/v1/invitations/{invitation}/accept")
    assert accepted.status_code == 200, accepted.text
    assert (await friend.get(f"/api/v1/vehicles/{vehicle}")).json()["role"] == "viewer"
    assert (await friend.get("/api/v1/invitations")).json() == []
    assert (await owner.get(f"/api/v1/vehicles/{vehicle}/invitations")).json() == []
    again = await friend.post(f"/api/v1/invitations/{invitation}/accept")
    assert again.status_code == 404


async def test_declined_and_withdrawn_invitations_grant_nothing(world: World) -> None:
    owner_id = await world.user("owner@example.com")
    await world.user("friend@example.com")
    vehicle = await world.vehicle(owner_id, "Car")
    owner = await world.login("owner@example.com")
    friend = await world.login("friend@example.com")
    url = f"/api/v1/vehicles/{vehicle}"
    await owner.post(f"{url}/shares", json={"email": "friend@example.com"})
    declined = (await friend.get("/api/v1/invitations")).json()[0]["id"]
    assert (await friend.post(f"/api/v1/invitations/{declined}/decline")).status_code == 204
    assert (await friend.post(f"/api/v1/invitations/{declined}/accept")).status_code == 404
    assert (await owner.get(f"{url}/invitations")).json() == []

    await owner.post(f"{url}/shares", json={"email": "friend@example.com"})
    withdrawn = (await owner.get(f"{url}/invitations")).json()[0]["id"]
    assert (await friend.get(f"{url}/invitations")).status_code == 404  # not theirs
    assert (await owner.delete(f"{url}/invitations/{withdrawn}")).status_code == 204
    assert (await owner.delete(f"{url}/invitations/{withdrawn}")).status_code == 404
    assert (await friend.get("/api/v1/invitations")).json() == []
    assert (await friend.post(f"/api/v1/invitations/{withdrawn}/accept")).status_code == 404
    assert (await friend.get(url)).status_code == 404


async def test_an_invitation_waits_for_an_account_made_later(world: World) -> None:
    owner_id = await world.user("owner@example.com")
    vehicle = await world.vehicle(owner_id, "Car")
    owner = await world.login("owner@example.com")
    sent = await owner.post(
        f"/api/v1/vehicles/{vehicle}/shares", json={"email": "later@example.com"}
    )
    assert sent.status_code == 202
    await world.user("later@example.com")
    later = await world.login("later@example.com")
    await share_and_accept(owner, later, vehicle, "later@example.com")
    assert (await later.get(f"/api/v1/vehicles/{vehicle}")).json()["role"] == "viewer"
