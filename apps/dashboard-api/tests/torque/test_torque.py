import asyncio
import time
from collections import Counter
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import select, text

from obd2_dashboard.kit.db import session_scope
from obd2_dashboard.models import Sample
from obd2_dashboard.pids.definitions import TORQUE_SESSION
from obd2_dashboard.trips.service import finish_idle_trips
from tests.conftest import Served, World
from tests.health.test_metrics import sample
from tests.torque.uploads import (
    NO_VALUE_TEXTS,
    last_value,
    own_uploads,
    post,
    send,
    send_all,
    value_fields,
)
from tests.trips.helpers import run_worker

SKIP_REASONS = ("no_value", "out_of_range", "not_a_number", "repeated", "bad_profile")
REFUSALS = ("too_large", "too_many_fields", "field_too_long", "too_many_values", "bad_time")


def _recorded(token: str, ts: int) -> dict[str, str]:
    """The shape of a Torque Pro upload: identity fields, then k<hex id> values."""
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


async def _counted(client: httpx.AsyncClient, name: str, reasons: tuple[str, ...]) -> Counter[str]:
    text_ = (await client.get("/metrics")).text
    return Counter({reason: sample(text_, name, f'reason="{reason}"') for reason in reasons})


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
        "TORQUE_ABCDEF": 5.0,  # an id nobody published: kept under its own name
        TORQUE_SESSION: (ts - 60_000) / 1000,
    }
    async with world.app.state.obd2.sessionmaker() as session:
        seq = (await session.execute(select(Sample.seq).where(Sample.pid == "RPM"))).scalar_one()
    # The numbers the ids of the PID table always had: uploads stored before are not stored
    # again when Torque sends them once more.
    assert seq == ts * 128 + 8
    again = await client.get("/api/v1/torque", params=_recorded(token, ts))
    assert again.text == "OK!"
    assert len(await _stored(world)) == 10  # a retried upload stores nothing twice

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
    ancient = await client.get("/api/v1/torque", params={"token": token, "time": "5", "kc": "1"})
    assert ancient.status_code == 422
    assert "epoch milliseconds" in ancient.json()["detail"]
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


async def test_values_torque_could_not_read_are_skipped_and_counted(
    world: World, client: httpx.AsyncClient
) -> None:
    user = await world.user("torque3@example.com")
    vehicle = await world.vehicle(user)
    _, token = await world.device(vehicle)
    name = "obd2_torque_values_skipped_total"
    before = await _counted(client, name, SKIP_REASONS)
    ts = int(time.time() * 1000)
    fields = [
        ("time", str(ts)),
        ("kc", "Infinity"),  # RPM: Torque's "no value"
        ("kd", "-Infinity"),  # SPEED
        ("k5", "NaN"),  # COOLANT_TEMP
        ("k10", "3.4028235E38"),  # MAF: Float.MAX_VALUE
        ("k2f", "-3.4028E38"),  # FUEL_LEVEL, as older versions print it
        ("kff1266", "1e308"),  # beyond the wire's bound, and no value of Torque's
        ("kff1204", "1000000000001"),
        ("kb", "inf"),  # infinite, however written
        ("k4", "fast"),  # ENGINE_LOAD: no number
        ("kff1238", "12.6"),  # ELM_VOLTAGE: stored
        ("kFF1238", "13.0"),  # the same id again with another value
        ("kff1005", "13.4"),  # GPS_LON: stored
        ("kff1005", "13.4"),  # sent twice with the same value, as Torque does: no loss
    ]
    response = await send(client, token, fields)
    assert response.status_code == 200
    assert response.text == "OK!"
    stored = await _stored(world)
    assert stored == {"ELM_VOLTAGE": 12.6, "GPS_LON": 13.4}
    counted = await _counted(client, name, SKIP_REASONS) - before
    assert counted == Counter(no_value=6, out_of_range=2, not_a_number=1, repeated=1)
    only_bad = await client.get(
        "/api/v1/torque", params={"token": token, "time": str(ts + 1000), "kc": "1e308"}
    )
    assert only_bad.text == "OK!"
    assert set(await _stored(world)) == set(stored)


async def test_uploads_over_the_limits_are_refused_clearly_and_stall_nobody(
    world: World, client: httpx.AsyncClient
) -> None:
    user = await world.user("flood@example.com")
    vehicle = await world.vehicle(user)
    _, token = await world.device(vehicle, "flood")
    polite_user = await world.user("polite@example.com")
    polite_vehicle = await world.vehicle(polite_user)
    _, polite = await world.device(polite_vehicle, "phone")
    name = "obd2_torque_uploads_refused_total"
    before = await _counted(client, name, REFUSALS)
    ts = int(time.time() * 1000)
    form = {"Content-Type": "application/x-www-form-urlencoded"}

    megabyte = client.post(
        f"/api/v1/torque?token={token}",
        content=f"time={ts}&kc=1&notice={'x' * 1_000_000}",
        headers=form,
    )
    long_field = client.get(
        "/api/v1/torque", params={"token": token, "time": str(ts), "userFullNameff1": "y" * 2000}
    )
    many_fields = client.post(
        f"/api/v1/torque?token={token}",
        content="&".join([f"time={ts}", *(f"userUnit{n:x}=km" for n in range(5000))]),
        headers=form,
    )
    many_values = client.post(
        f"/api/v1/torque?token={token}",
        content="&".join([f"time={ts}", *(f"k{0x100000 + n:x}=1" for n in range(1500))]),
        headers=form,
    )
    normal = [
        send(client, polite, [("time", str(ts + n * 1000)), ("kc", "900"), ("kd", "10")])
        for n in range(5)
    ]
    answers = await asyncio.gather(megabyte, long_field, many_fields, many_values, *normal)
    big, long_, fields_, values_, *fine = answers
    assert big.status_code == 413
    assert big.json()["detail"] == "the upload is larger than 524288 bytes"
    assert long_.status_code == 422
    assert long_.json()["detail"] == "field 'userFullNameff1' is longer than 1024 characters"
    assert fields_.status_code == 422
    assert fields_.json()["detail"] == "an upload has at most 4000 fields"
    assert values_.status_code == 422
    assert values_.json()["detail"] == "an upload has at most 1024 k… values"
    assert [r.text for r in fine] == ["OK!"] * 5
    counted = await _counted(client, name, REFUSALS) - before
    assert counted == Counter(too_large=1, field_too_long=1, too_many_fields=1, too_many_values=1)
    async with world.app.state.obd2.sessionmaker() as session:
        vehicles = (await session.execute(select(Sample.vehicle_id).distinct())).scalars()
        assert list(vehicles) == [polite_vehicle]  # nothing of the refused uploads was kept
    # At the limits, an upload is taken whole: 1024 values of ids nobody published.
    at_limit = await client.post(
        f"/api/v1/torque?token={token}",
        content="&".join([f"time={ts}", *(f"k{0x100000 + n:x}=2" for n in range(1024))]),
        headers=form,
    )
    assert at_limit.text == "OK!"
    async with world.app.state.obd2.sessionmaker() as session:
        count = await session.execute(
            text("SELECT count(*) FROM samples WHERE vehicle_id = :v"), {"v": vehicle}
        )
        assert count.scalar_one() == 1024


async def test_our_drive_keeps_every_value_names_it_and_gets_the_apps_economy(
    world: World,
) -> None:
    uploads = own_uploads()
    owner = await world.user("commuter@example.com")
    vehicle = await world.vehicle(owner, "Hatchback")
    _, token = await world.device(vehicle, "phone")
    name = "obd2_torque_values_skipped_total"
    before = await _counted(world.client, name, SKIP_REASONS)
    await send_all(world.client, token, uploads)

    no_value = sum(
        1 for upload in uploads for _, raw in value_fields(upload) if raw in NO_VALUE_TEXTS
    )
    numbers: set[tuple[int, str]] = set()
    for upload in uploads:
        ts = dict(upload).get("time")
        numbers.update(
            (int(ts or 0), key.lower())
            for key, raw in value_fields(upload)
            if raw not in NO_VALUE_TEXTS
        )
    value_uploads = sum(1 for upload in uploads if value_fields(upload))
    counted = await _counted(world.client, name, SKIP_REASONS) - before
    assert counted == Counter(no_value=no_value)
    assert no_value > value_uploads * 5  # a few sensors Torque never read, every upload
    async with world.app.state.obd2.sessionmaker() as session:
        total = await session.execute(text("SELECT count(*) FROM samples"))
        assert total.scalar_one() == len(numbers) + value_uploads  # and a session marker each

    client = await world.login("commuter@example.com")
    catalogue = {
        p["name"]: p for p in (await client.get(f"/api/v1/vehicles/{vehicle}/pids")).json()
    }
    # The user's own PID: named and united as the names upload says (its default unit).
    assert catalogue["TORQUE_221234"] == {
        "name": "TORQUE_221234",
        "display_name": "Transmission fluid temperature",
        "short_name": "ATF",
        "unit": "degC",
        "source": "torque",
        "standard": False,
        "first_seen_ts": min(
            int(dict(u)["time"]) for u in uploads if any(k == "k221234" for k, _ in u)
        ),
    }
    egt = catalogue["TORQUE_78"]  # a mode-01 PID outside our table
    assert (egt["display_name"], egt["unit"], egt["source"]) == (
        "Exhaust Gas Temperature 1",
        "degC",
        "obd",
    )
    # Sensors Torque never read have no record: no value of theirs was stored.
    assert "TORQUE_79" not in catalogue
    assert "TORQUE_FF1249" not in catalogue

    car = (await client.get(f"/api/v1/vehicles/{vehicle}")).json()
    assert (car["profile_name"], car["fuel_type"], car["fuel_type_source"]) == (
        "Commuter",
        "petrol",
        "torque",
    )
    assert (car["weight_kg"], car["volumetric_efficiency_pct"]) == (1380.5, 85.0)
    first = int(dict(uploads[0])["time"])
    events = (
        await client.get(
            f"/api/v1/vehicles/{vehicle}/events", params={"from": first - 1, "to": first + 1}
        )
    ).json()
    assert [e["message"] for e in events] == ["Trip started"]

    await run_worker(world.app)
    (trip,) = (await client.get(f"/api/v1/vehicles/{vehicle}/trips")).json()
    assert trip["fuel_source"] == "TORQUE_FUEL_FLOW"
    app_average = last_value(uploads, "kff1208")
    assert trip["economy_l_per_100km"] == pytest.approx(app_average, rel=0.10)
    assert trip["distance_km"] == pytest.approx(last_value(uploads, "kff1204"), rel=0.05)
    await client.aclose()


async def test_the_profile_fills_only_settings_nobody_set(world: World) -> None:
    owner = await world.user("owner@example.com")
    client = await world.login("owner@example.com")
    made = await client.post(
        "/api/v1/vehicles", json={"name": "Van", "fuel_type": "diesel", "weight_kg": 2100}
    )
    assert made.status_code == 201, made.text
    chosen = made.json()["id"]
    blank = await world.vehicle(owner, "Blank")
    _, chosen_token = await world.device(chosen, "phone")
    _, blank_token = await world.device(blank, "phone")
    ts = str(int(time.time() * 1000))
    profile = [
        ("time", ts),
        ("profileName", "Torque van"),
        ("profileFuelType", "0"),
        ("profileWeight", "1380.5"),
        ("profileVe", "85.0"),
        ("profileFuelCost", "1.79"),
    ]
    for token in (chosen_token, blank_token):
        assert (await send(world.client, token, profile)).text == "OK!"

    kept = (await client.get(f"/api/v1/vehicles/{chosen}")).json()
    assert (kept["fuel_type"], kept["fuel_type_source"], kept["weight_kg"]) == (
        "diesel",
        "user",
        2100.0,
    )
    assert (kept["profile_name"], kept["volumetric_efficiency_pct"]) == ("Torque van", 85.0)
    filled = (await client.get(f"/api/v1/vehicles/{blank}")).json()
    assert (filled["fuel_type"], filled["fuel_type_source"]) == ("petrol", "torque")
    assert (filled["profile_name"], filled["weight_kg"]) == ("Torque van", 1380.5)

    # Once set, a setting stays: another profile (or the same phone's later one) changes nothing.
    other = [("time", ts), ("profileName", "Other"), ("profileFuelType", "1"), ("profileVe", "90")]
    assert (await send(world.client, blank_token, other)).text == "OK!"
    again = (await client.get(f"/api/v1/vehicles/{blank}")).json()
    assert (again["profile_name"], again["fuel_type"], again["volumetric_efficiency_pct"]) == (
        "Torque van",
        "petrol",
        85.0,
    )
    # What the user changes is theirs from then on.
    changed = await client.patch(f"/api/v1/vehicles/{blank}", json={"fuel_type": "diesel"})
    assert changed.json()["fuel_type_source"] == "user"
    # A profile value that is no setting is skipped and counted, never stored.
    name = "obd2_torque_values_skipped_total"
    before = await _counted(world.client, name, SKIP_REASONS)
    odd = [("time", ts), ("profileWeight", "-4"), ("profileVe", "NaN")]
    fresh = await world.vehicle(owner, "Fresh")
    _, fresh_token = await world.device(fresh, "phone")
    assert (await send(world.client, fresh_token, odd)).text == "OK!"
    counted = await _counted(world.client, name, SKIP_REASONS) - before
    assert counted == Counter(bad_profile=2)
    unset = (await client.get(f"/api/v1/vehicles/{fresh}")).json()
    assert (unset["weight_kg"], unset["volumetric_efficiency_pct"]) == (None, None)


async def test_notices_become_events_once(world: World) -> None:
    owner = await world.user("notice@example.com")
    vehicle = await world.vehicle(owner)
    _, token = await world.device(vehicle, "phone")
    ts = int(time.time() * 1000)
    notice = [
        ("time", str(ts)),
        ("session", str(ts - 1000)),
        ("notice", "Trip started"),
        ("noticeClass", "org.prowl.torque.map.notices.TripNotice"),
    ]
    for _ in range(2):  # Torque sends again what was not answered in time
        assert (await send(world.client, token, notice)).text == "OK!"
    client = await world.login("notice@example.com")
    window = {"from": ts - 60_000, "to": ts + 60_000}
    events = (await client.get(f"/api/v1/vehicles/{vehicle}/events", params=window)).json()
    assert [(e["ts"], e["message"], e["event_class"]) for e in events] == [
        (ts, "Trip started", "org.prowl.torque.map.notices.TripNotice")
    ]
    stranger = await world.user("stranger@example.com")
    assert stranger
    other = await world.login("stranger@example.com")
    hidden = await other.get(f"/api/v1/vehicles/{vehicle}/events", params=window)
    assert hidden.status_code == 404
    backwards = await client.get(
        f"/api/v1/vehicles/{vehicle}/events", params={"from": ts, "to": ts}
    )
    assert backwards.status_code == 422


def _torque_drive(
    start: int, seconds: int, session: int, every: int = 5
) -> list[list[tuple[str, str]]]:
    """Uploads of a car at 50 km/h, every ``every`` seconds, with Torque's fuel flow."""
    return [
        [
            ("session", str(session)),
            ("time", str(start + i * 1000)),
            ("kc", "2000"),
            ("kd", "50"),
            ("kff125d", "4.0"),
        ]
        for i in range(0, seconds + 1, every)
    ]


@pytest.mark.parametrize(
    ("second_session", "trips"),
    [("same", 1), ("new", 2)],
)
async def test_a_new_torque_session_after_a_stop_ends_the_trip(
    world: World, second_session: str, trips: int
) -> None:
    owner = await world.user("sessions@example.com")
    vehicle = await world.vehicle(owner)
    _, token = await world.device(vehicle, "phone")
    start = int(time.time() * 1000) - 3_600_000
    first = _torque_drive(start, 300, session=start)
    # Two minutes with the engine off, well inside the 5-minute join gap.
    resume = start + 420_000
    session = start if second_session == "same" else resume
    await send_all(world.client, token, first + _torque_drive(resume, 300, session=session))
    await run_worker(world.app)
    client = await world.login("sessions@example.com")
    listed = (await client.get(f"/api/v1/vehicles/{vehicle}/trips")).json()
    assert len(listed) == trips
    assert sum(t["distance_km"] for t in listed) == pytest.approx(2 * 300 * 50 / 3600)


async def test_a_session_change_while_driving_ends_nothing(world: World) -> None:
    owner = await world.user("restart@example.com")
    vehicle = await world.vehicle(owner)
    _, token = await world.device(vehicle, "phone")
    start = int(time.time() * 1000) - 3_600_000
    # The app restarted mid-drive: a new session with no stop.
    uploads = _torque_drive(start, 300, session=start) + _torque_drive(
        start + 305_000, 300, session=start + 305_000
    )
    await send_all(world.client, token, uploads)
    await run_worker(world.app)
    client = await world.login("restart@example.com")
    (trip,) = (await client.get(f"/api/v1/vehicles/{vehicle}/trips")).json()
    assert trip["distance_km"] == pytest.approx(605 * 50 / 3600)


async def test_fuel_comes_from_fuel_rate_then_torques_flow_then_maf(world: World) -> None:
    owner = await world.user("fuel@example.com")
    client = await world.login("fuel@example.com")
    start = int(time.time() * 1000) - 7_200_000
    cases = {
        # PID 5E, Torque's flow and MAF: the engine computer's own figure wins.
        "FUEL_RATE": [("k5e", "6.0"), ("kff125d", "4.0"), ("k10", "10.0")],
        "TORQUE_FUEL_FLOW": [("kff125d", "4.0"), ("k10", "10.0")],
        "MAF": [("k10", "10.0")],
    }
    expected_litres = {"FUEL_RATE": 1.0, "TORQUE_FUEL_FLOW": 4.0 / 6, "MAF": 6000 / 14.7 / 745}
    for source, fuel in cases.items():
        made = await client.post("/api/v1/vehicles", json={"name": source})
        vehicle = made.json()["id"]
        _, token = await world.device(vehicle, "phone")
        uploads = [
            [("time", str(start + i * 1000)), ("kc", "2000"), ("kd", "60"), *fuel]
            for i in range(0, 601, 5)
        ]
        await send_all(world.client, token, uploads)
        await run_worker(world.app)
        (trip,) = (await client.get(f"/api/v1/vehicles/{vehicle}/trips")).json()
        assert trip["fuel_source"] == source
        assert trip["fuel_used_l"] == pytest.approx(expected_litres[source])
        assert trip["economy_l_per_100km"] == pytest.approx(expected_litres[source] / 10 * 100)
    assert owner


async def test_one_devices_hostile_uploads_leave_another_users_trip_alone(
    world: World,
) -> None:
    hostile_owner = await world.user("hostile@example.com")
    hostile_vehicle = await world.vehicle(hostile_owner)
    _, hostile = await world.device(hostile_vehicle, "hostile")
    driver = await world.user("driver@example.com")
    vehicle = await world.vehicle(driver)
    _, token = await world.device(vehicle, "phone")
    start = int(time.time() * 1000) - 3_600_000
    garbage = ["1e308", "-1e308", "NaN", "Infinity", "-3.4028235E38", "1e12", "-1e12", "0x1p9"]
    for i in range(0, 601, 5):
        ts = str(start + i * 1000)
        if i % 30 == 0:
            hostile_upload = [("time", ts), ("session", "x" * 900)]
            hostile_upload += [(f"k{n:x}", garbage[n % len(garbage)]) for n in range(1, 900)]
            hostile_upload += [(f"userFullName{n:x}", "\x00\u202e" * 20) for n in range(300)]
            assert (await post(world.client, hostile, hostile_upload)).text == "OK!"
        normal = [("time", ts), ("session", str(start)), ("kc", "2000"), ("kd", "60")]
        assert (await send(world.client, token, normal)).text == "OK!"
    await run_worker(world.app)
    # What the worker's sweep does (the embedded worker may have done it already).
    gap_ms = world.app.state.obd2.settings.TRIP_JOIN_GAP_S * 1000
    async with session_scope(world.app.state.obd2.sessionmaker) as session:
        await finish_idle_trips(session, int(time.time() * 1000), gap_ms)
        letters = await session.execute(text("SELECT count(*) FROM dead_letters"))
        assert letters.scalar_one() == 0
    client = await world.login("driver@example.com")
    (trip,) = (await client.get(f"/api/v1/vehicles/{vehicle}/trips")).json()
    assert trip["finished"] is True
    assert trip["distance_km"] == pytest.approx(10.0)
    # What the hostile device named is kept printable, cut to size.
    mine = await world.login("hostile@example.com")
    names = (await mine.get(f"/api/v1/vehicles/{hostile_vehicle}/pids")).json()
    assert all(p["display_name"].isprintable() for p in names)
    assert max(abs(v) for v in (await _stored_values(world, hostile_vehicle))) <= 1e12


async def _stored_values(world: World, vehicle: int) -> list[float]:
    async with world.app.state.obd2.sessionmaker() as session:
        rows = await session.execute(
            select(Sample.value).where(Sample.vehicle_id == vehicle, Sample.pid != TORQUE_SESSION)
        )
        return [float(v) for v in rows.scalars()]
