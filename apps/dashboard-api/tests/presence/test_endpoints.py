"""The state the API returns with vehicles, devices and trips, on both backends.

Time is driven with explicit timestamps: the repository is called with the ``now`` of each
step, or the stored times are moved back, rather than sleeping past a threshold.
"""

from datetime import UTC, datetime, timedelta

import httpx

from obd2_dashboard.devices.values import ActiveDevice
from obd2_dashboard.models import Device, Trip, Vehicle
from obd2_dashboard.presence import service as presence
from obd2_dashboard.presence.state import Thresholds
from obd2_dashboard.telemetry.repository import SampleRepository
from tests.conftest import World

S = timedelta(seconds=1)
LIMITS = Thresholds()  # the defaults: stale after 15 s, offline after 300 s, silent after 60 s


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def _car(world: World, alice: httpx.AsyncClient) -> tuple[int, int, str]:
    vehicle_id: int = (await alice.post("/api/v1/vehicles", json={"name": "Car"})).json()["id"]
    created = await alice.post(f"/api/v1/vehicles/{vehicle_id}/devices", json={"name": "Pi"})
    return vehicle_id, created.json()["id"], created.json()["token"]


async def _move_back(world: World, vehicle_id: int, device_id: int, by: timedelta) -> None:
    """As if ``by`` had passed since every upload and report."""
    async with world.app.state.obd2.sessionmaker() as session:
        for row, names in (
            (await session.get(Vehicle, vehicle_id), ("last_seen_at", "live_since")),
            (
                await session.get(Device, device_id),
                ("last_seen_at", "last_upload_at", "flowing_since"),
            ),
        ):
            for name in names:
                if getattr(row, name) is not None:
                    setattr(row, name, getattr(row, name) - by)
        await session.commit()


async def test_every_answer_carries_the_state_and_when_it_began(
    world: World, alice: httpx.AsyncClient
) -> None:
    vehicle_id, device_id, token = await _car(world, alice)
    vehicle = (await alice.get(f"/api/v1/vehicles/{vehicle_id}")).json()
    assert vehicle["state"] == "never_seen"
    assert _at(vehicle["state_since"]) == _at(vehicle["created_at"])
    [device] = (await alice.get(f"/api/v1/vehicles/{vehicle_id}/devices")).json()
    assert (device["state"], _at(device["state_since"])) == ("silent", _at(device["created_at"]))

    before = datetime.now(UTC)
    sample = {"seq": 1, "ts": int(before.timestamp() * 1000), "pid": "RPM", "value": 800.0}
    uploaded = await alice.post(
        "/api/v1/ingest",
        json={"samples": [sample]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert uploaded.status_code == 200, uploaded.text
    after = datetime.now(UTC)

    [listed] = (await alice.get("/api/v1/vehicles")).json()
    assert listed["state"] == "live"
    assert before <= _at(listed["state_since"]) <= after
    [device] = (await alice.get(f"/api/v1/vehicles/{vehicle_id}/devices")).json()
    assert device["state"] == "connected"
    assert before <= _at(device["state_since"]) <= after
    seen = _at(listed["last_seen_at"])

    await _move_back(world, vehicle_id, device_id, 20 * S)
    vehicle = (await alice.get(f"/api/v1/vehicles/{vehicle_id}")).json()
    assert (vehicle["state"], _at(vehicle["state_since"])) == ("stale", seen - 20 * S + 15 * S)
    [device] = (await alice.get(f"/api/v1/vehicles/{vehicle_id}/devices")).json()
    assert device["state"] == "connected"

    await _move_back(world, vehicle_id, device_id, 50 * S)
    [device] = (await alice.get(f"/api/v1/vehicles/{vehicle_id}/devices")).json()
    assert (device["state"], _at(device["state_since"])) == ("silent", seen - 70 * S + 60 * S)

    await _move_back(world, vehicle_id, device_id, 300 * S)
    [listed] = (await alice.get("/api/v1/vehicles")).json()
    assert (listed["state"], _at(listed["state_since"])) == ("offline", seen - 370 * S + 300 * S)

    revoked = (await alice.post(f"/api/v1/devices/{device_id}/revoke")).json()
    assert (revoked["state"], revoked["state_since"]) == ("revoked", revoked["revoked_at"])


async def _active(world: World, device_id: int) -> ActiveDevice:
    async with world.app.state.obd2.sessionmaker() as session:
        device = await session.get(Device, device_id)
        assert device is not None
        return ActiveDevice(device.id, device.vehicle_id, device.last_upload_at)


async def _states(world: World, vehicle_id: int, device_id: int, now: datetime) -> list[object]:
    async with world.app.state.obd2.sessionmaker() as session:
        vehicle = await session.get(Vehicle, vehicle_id)
        device = await session.get(Device, device_id)
        assert vehicle is not None
        assert device is not None
        return [presence.of_vehicle(vehicle, now, LIMITS), presence.of_device(device, now, LIMITS)]


async def _upload(world: World, device_id: int, now: datetime) -> None:
    device = await _active(world, device_id)
    async with world.app.state.obd2.sessionmaker() as session:
        await SampleRepository(session).touch_uploaded(device, now, LIMITS)
        await session.commit()


async def test_a_stretch_of_uploads_keeps_the_time_it_began_until_a_gap_ends_it(
    world: World, alice: httpx.AsyncClient
) -> None:
    vehicle_id, device_id, _ = await _car(world, alice)
    t0 = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)
    for step in range(0, 60, 6):  # an upload every 6 s (each one recorded: over 5 s apart)
        await _upload(world, device_id, t0 + step * S)
    vehicle, device = await _states(world, vehicle_id, device_id, t0 + 60 * S)
    assert (vehicle.state, vehicle.since) == ("live", t0)  # type: ignore[attr-defined]
    assert (device.state, device.since) == ("connected", t0)  # type: ignore[attr-defined]

    # 16 s without an upload: a new live stretch for the vehicle; the device stayed connected.
    await _upload(world, device_id, t0 + 70 * S)
    vehicle, device = await _states(world, vehicle_id, device_id, t0 + 70 * S)
    assert (vehicle.state, vehicle.since) == ("live", t0 + 70 * S)  # type: ignore[attr-defined]
    assert (device.state, device.since) == ("connected", t0)  # type: ignore[attr-defined]

    # Over a minute without one: the device was silent, and is connected again from now.
    await _upload(world, device_id, t0 + 140 * S)
    vehicle, device = await _states(world, vehicle_id, device_id, t0 + 140 * S)
    assert (device.state, device.since) == ("connected", t0 + 140 * S)  # type: ignore[attr-defined]


async def test_the_agents_status_reports_set_the_adapter_state_and_its_time(
    world: World, alice: httpx.AsyncClient
) -> None:
    vehicle_id, device_id, _ = await _car(world, alice)
    t0 = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)

    async def report(now: datetime, adapter_state: str) -> None:
        async with world.app.state.obd2.sessionmaker() as session:
            await SampleRepository(session).touch_reported(
                device_id, now, LIMITS, "1.0.0", adapter_state
            )
            await session.commit()

    await _upload(world, device_id, t0)
    await report(t0, "connected")
    await report(t0 + 10 * S, "engine_off")
    await report(t0 + 20 * S, "engine_off")
    _, device = await _states(world, vehicle_id, device_id, t0 + 25 * S)
    assert (device.state, device.since) == ("engine_off", t0 + 10 * S)  # type: ignore[attr-defined]

    await report(t0 + 30 * S, "no_ecu")
    _, device = await _states(world, vehicle_id, device_id, t0 + 30 * S)
    assert (device.state, device.since) == (  # type: ignore[attr-defined]
        "adapter_disconnected",
        t0 + 30 * S,
    )

    # Silent for two minutes, then the same report again: the state begins anew.
    _, device = await _states(world, vehicle_id, device_id, t0 + 150 * S)
    assert (device.state, device.since) == ("silent", t0 + 90 * S)  # type: ignore[attr-defined]
    await report(t0 + 150 * S, "no_ecu")
    _, device = await _states(world, vehicle_id, device_id, t0 + 150 * S)
    assert (device.state, device.since) == (  # type: ignore[attr-defined]
        "adapter_disconnected",
        t0 + 150 * S,
    )


async def test_a_trip_is_in_progress_only_while_its_vehicle_is_live_and_it_is_recent(
    world: World, alice: httpx.AsyncClient
) -> None:
    vehicle_id, device_id, token = await _car(world, alice)
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    async with world.app.state.obd2.sessionmaker() as session:
        for start, end in ((now_ms - 3_600_000, now_ms - 3_000_000), (now_ms - 60_000, now_ms)):
            session.add(
                Trip(
                    vehicle_id=vehicle_id,
                    start_ts=start,
                    end_ts=end,
                    distance_km=1.0,
                    distance_source="speed",
                    moving_s=60.0,
                    idle_s=0.0,
                    sample_count=10,
                    track_points=0,
                    state="{}",
                )
            )
        await session.commit()
    trips = f"/api/v1/vehicles/{vehicle_id}/trips"

    async def in_progress() -> list[bool]:
        listed = (await alice.get(trips)).json()
        details = [(await alice.get(f"{trips}/{t['id']}")).json() for t in listed]
        assert [t["in_progress"] for t in listed] == [d["in_progress"] for d in details]
        return [t["in_progress"] for t in sorted(listed, key=lambda t: t["start_ts"])]

    # Never seen: nothing is in progress.
    assert await in_progress() == [False, False]
    sample = {"seq": 1, "ts": now_ms, "pid": "RPM", "value": 800.0}
    await alice.post(
        "/api/v1/ingest", json={"samples": [sample]}, headers={"Authorization": f"Bearer {token}"}
    )
    # Live: the recent trip is; the hour-old one, unfinished until the sweep reaches it, is not.
    assert await in_progress() == [False, True]
    # Stale: none.
    await _move_back(world, vehicle_id, device_id, 20 * S)
    assert await in_progress() == [False, False]
