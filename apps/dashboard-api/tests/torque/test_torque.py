import time
from urllib.parse import urlencode

import httpx
from sqlalchemy import select

from obd2_dashboard.models import Sample
from tests.conftest import Served, World
from tests.health.test_metrics import sample


def _recorded(token: str, ts: int) -> dict[str, str]:
    """The shape of a Torque Pro upload: identity fields, then k<hex PID> values."""
    return {
        "eml": "driver@example.com",
        "v": "9",
        "session": str(ts - 60_000),
        "id": "2e5b7a58a7a9f3c1b1d6d1f3b6e0c9aa",
        "time": str(ts),
        "token": token,
        "kff1005": "13.40495",
        "kff1006": "52.52001",
        "kff1001": "47.0",
        "kc": "2143.5",
        "kd": "46",
        "k5": "88",
        "k2f": "61.5",
        "kff1238": "14.2",
        "k10": "NaN",
        "kabcdef": "5",
    }


async def _stored(world: World) -> dict[str, float]:
    async with world.app.state.obd2.sessionmaker() as session:
        rows = await session.execute(select(Sample.pid, Sample.value))
        return {pid: float(value) for pid, value in rows}


async def test_torque_upload_is_stored_and_answers_ok(
    world: World, client: httpx.AsyncClient
) -> None:
    user = await world.user("torque@example.com")
    vehicle = await world.vehicle(user)
    _, token = await world.device(vehicle, "phone")
    ts = int(time.time() * 1000)
    response = await client.get("/api/v1/torque", params=_recorded(token, ts))
    assert response.status_code == 200
    assert response.text == "OK!"
    assert await _stored(world) == {
        "GPS_LON": 13.40495,
        "GPS_LAT": 52.52001,
        "GPS_SPEED": 47.0,
        "RPM": 2143.5,
        "SPEED": 46.0,
        "COOLANT_TEMP": 88.0,
        "FUEL_LEVEL": 61.5,
        "ELM_VOLTAGE": 14.2,
    }
    again = await client.get("/api/v1/torque", params=_recorded(token, ts))
    assert again.text == "OK!"
    assert len(await _stored(world)) == 8  # a retried upload stores nothing twice

    # Torque's first requests carry names and units only: answered, nothing stored.
    meta = await client.get(
        "/api/v1/torque",
        params={"token": token, "session": "1", "userUnitff1005": "deg", "profileName": "Car"},
    )
    assert meta.text == "OK!"
    form = await client.post(
        f"/api/v1/torque?token={token}",
        content=urlencode({"time": str(ts + 1000), "kc": "900"}),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form.text == "OK!"
    async with world.app.state.obd2.sessionmaker() as session:
        rpm = (await session.execute(select(Sample.value).where(Sample.pid == "RPM"))).scalars()
        assert sorted(rpm) == [900.0, 2143.5]


async def test_torque_refuses_bad_tokens_and_times(world: World, client: httpx.AsyncClient) -> None:
    user = await world.user("torque2@example.com")
    vehicle = await world.vehicle(user)
    _, token = await world.device(vehicle)
    bad = await client.get("/api/v1/torque", params={"token": "obd2d_nope", "kc": "1"})
    assert bad.status_code == 401
    # No token is no credentials, as on every other route: 401, not a parameter error.
    missing = await client.get("/api/v1/torque", params={"kc": "1"})
    assert missing.status_code == 401
    assert missing.json() == {"detail": "unknown or revoked device token"}
    wrong_time = await client.get(
        "/api/v1/torque", params={"token": token, "time": "yesterday", "kc": "1"}
    )
    assert wrong_time.status_code == 422
    future = await client.get(
        "/api/v1/torque",
        params={"token": token, "time": str(int(time.time() * 1000) + 5 * 86_400_000), "kc": "1"},
    )
    assert future.status_code == 422
    assert await _stored(World(world.app, client)) == {}


async def test_torque_long_get_through_a_real_server(served: Served) -> None:
    transport = httpx.ASGITransport(app=served.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        world = World(served.app, c)
        user = await world.user("long@example.com")
        vehicle = await world.vehicle(user)
        _, token = await world.device(vehicle)
    fields = _recorded(token, int(time.time() * 1000))
    # Torque sends every sensor the user logs, names and units included: URLs of several KB.
    for n in range(150):
        fields[f"userShortName{n:x}"] = f"Sensor number {n} with a long name"
    url = f"{served.url}/api/v1/torque?{urlencode(fields)}"
    assert len(url) > 6000
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200
    assert response.text == "OK!"


async def test_values_the_storage_cannot_hold_are_skipped_and_counted(
    world: World, client: httpx.AsyncClient
) -> None:
    user = await world.user("torque3@example.com")
    vehicle = await world.vehicle(user)
    _, token = await world.device(vehicle)

    async def counted() -> dict[str, float]:
        text = (await client.get("/metrics")).text
        return {
            reason: sample(text, "obd2_torque_values_skipped_total", f'reason="{reason}"')
            for reason in ("out_of_range", "not_a_number", "repeated")
        }

    before = await counted()
    ts = int(time.time() * 1000)
    fields = {
        "token": token,
        "time": str(ts),
        "kc": "1e308",  # RPM
        "kd": "-1e308",  # SPEED
        "k5": "nan",  # COOLANT_TEMP
        "k10": "inf",  # MAF
        "k2f": "1000000000001",  # FUEL_LEVEL
        "k4": "fast",  # ENGINE_LOAD
        "kff1238": "12.6",  # ELM_VOLTAGE: the one value stored
        "kFF1238": "13.0",  # the same PID again
    }
    response = await client.get("/api/v1/torque", params=fields)
    assert response.status_code == 200
    assert response.text == "OK!"
    assert await _stored(world) == {"ELM_VOLTAGE": 12.6}
    after = await counted()
    assert after["out_of_range"] - before["out_of_range"] == 5
    assert after["not_a_number"] - before["not_a_number"] == 1
    assert after["repeated"] - before["repeated"] == 1
    only_bad = await client.get(
        "/api/v1/torque", params={"token": token, "time": str(ts + 1000), "kc": "1e308"}
    )
    assert only_bad.text == "OK!"
    assert await _stored(world) == {"ELM_VOLTAGE": 12.6}
