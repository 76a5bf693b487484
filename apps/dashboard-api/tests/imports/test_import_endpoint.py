"""POST /api/v1/vehicles/{id}/imports: the CLI's import over HTTP, for the vehicle's owner."""

from obd2_dashboard.settings import Settings
from tests.conftest import World
from tests.imports.test_imports import GPX_TRACK, TORQUE_LOG
from tests.vehicles.test_sharing import share_and_accept


async def test_the_owner_imports_a_file_and_gets_the_summary(world: World) -> None:
    owner_id = await world.user("owner@example.com")
    await world.user("friend@example.com")
    await world.user("stranger@example.com")
    vehicle = await world.vehicle(owner_id, "Imported car")
    owner = await world.login("owner@example.com")
    friend = await world.login("friend@example.com")
    stranger = await world.login("stranger@example.com")
    await share_and_accept(owner, friend, vehicle, "friend@example.com")
    url = f"/api/v1/vehicles/{vehicle}/imports"
    body = TORQUE_LOG.read_bytes()
    headers = {"Content-Type": "text/csv"}

    assert (await friend.post(url, content=body, headers=headers)).status_code == 403
    assert (await stranger.post(url, content=body, headers=headers)).status_code == 404
    assert (await world.client.post(url, content=body, headers=headers)).status_code == 401

    dry = await owner.post(url, content=body, headers=headers, params={"dry_run": "true"})
    assert dry.status_code == 200, dry.text
    assert (dry.json()["samples_read"], dry.json()["stored"]) == (1829, 0)

    first = await owner.post(url, content=body, headers=headers)
    assert first.status_code == 200, first.text
    summary = first.json()
    assert (summary["format"], summary["stored"], summary["duplicates"]) == ("torque-csv", 1829, 0)
    assert "G(x)" in summary["unknown_columns"]
    again = (await owner.post(url, content=body, headers=headers)).json()
    assert (again["stored"], again["duplicates"]) == (0, 1829)

    gpx = await owner.post(
        url,
        content=GPX_TRACK.read_bytes(),
        headers={"Content-Type": "application/gpx+xml"},
        params={"format": "gpx"},
    )
    assert gpx.status_code == 200, gpx.text
    assert gpx.json()["stored"] == 34

    mapped = await owner.post(
        url,
        content=b"RPM,oil\n800,90\n900,91\n",
        headers=headers,
        params={"rate_hz": 1, "start": 1749900000000, "map": ["oil=OIL_TEMP"]},
    )
    assert mapped.status_code == 200, mapped.text
    assert mapped.json()["stored"] == 4

    wrong = await owner.post(url, content=GPX_TRACK.read_bytes(), params={"format": "csv"})
    assert wrong.status_code == 422
    assert "nothing was stored" in wrong.json()["detail"]
    assert (await owner.post(url, content=b"", headers=headers)).status_code == 422
    bad_map = await owner.post(url, content=body, headers=headers, params={"map": "x"})
    assert bad_map.status_code == 422


async def test_a_file_over_the_limit_is_refused(world: World, settings: Settings) -> None:
    owner_id = await world.user("owner@example.com")
    vehicle = await world.vehicle(owner_id)
    owner = await world.login("owner@example.com")
    too_big = b"ts,RPM\n" + b"1749900000000,800\n" * (settings.IMPORT_MAX_BODY_BYTES // 18 + 1)
    response = await owner.post(
        f"/api/v1/vehicles/{vehicle}/imports", content=too_big, headers={"Content-Type": "text/csv"}
    )
    assert response.status_code == 413
