"""Alerts that mean what they say: a rule reads samples from when it was set on, never imported
ones; it can be edited (its cooldown too); its alerts read in each reader's units with display
names, listed by time with paging, and counted as open on the vehicle. Both backends."""

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import httpx

from obd2_dashboard.alerts.firing import check_silence
from obd2_dashboard.imports.service import ImportOptions, import_log
from obd2_dashboard.kit.db import session_scope
from tests.alerts.helpers import Car, minutes_ago
from tests.conftest import World
from tests.vehicles.test_sharing import share_and_accept

HOT = {"kind": "threshold", "pid": "COOLANT_TEMP", "op": "above", "threshold": 85}


def _coolant(
    start: int, values: Sequence[float], step_ms: int = 5_000
) -> list[tuple[int, str, float]]:
    return [(start + i * step_ms, "COOLANT_TEMP", v) for i, v in enumerate(values)]


def _speed(
    start: int, values: Sequence[float], step_ms: int = 1_000
) -> list[tuple[int, str, float]]:
    return [(start + i * step_ms, "SPEED", v) for i, v in enumerate(values)]


async def _history(client: httpx.AsyncClient, car: Car, query: str = "") -> list[dict[str, object]]:
    response = await client.get(f"/api/v1/vehicles/{car.vehicle_id}/alerts{query}")
    assert response.status_code == 200, response.text
    listed: list[dict[str, object]] = response.json()
    return listed


async def test_a_rule_fires_over_samples_from_its_making_on_only(car: Car) -> None:
    # The case: coolant above 85 since 12:49, the rule made at 12:54.
    t0 = minutes_ago(10)
    made = t0 + 5 * 60_000
    rule = await car.rule(**HOT, made_ms=made)
    await car.send(_coolant(t0, [90.0] * 84))  # 12:49 to 12:56, hot all along
    await car.work()
    (alert,) = await car.alerts()
    assert alert.started_ts >= made
    assert alert.fired_ts >= made
    assert alert.started_ts == made  # the first sample at or after the making
    assert rule["id"] == alert.rule_id


async def test_a_rule_made_now_ignores_the_minutes_before(car: Car) -> None:
    rule = await car.rule(**HOT, made_ms=None)
    assert rule["evaluated_from_ts"] >= minutes_ago(1)  # type: ignore[operator]
    await car.send(_coolant(minutes_ago(4), [95.0] * 40))
    await car.work()
    assert await car.alerts() == []


async def test_a_silence_rule_made_during_a_silence_counts_from_its_making(car: Car) -> None:
    await car.send([(minutes_ago(0), "RPM", 800.0)])  # heard from now
    made = minutes_ago(-1)  # the rule is made a minute after the last sample
    await car.rule(kind="silence", silence_minutes=15, made_ms=made)
    async with session_scope(car.app.state.obd2.sessionmaker) as session:
        assert await check_silence(session, datetime.now(UTC) + timedelta(minutes=15)) == 0
        assert await check_silence(session, datetime.now(UTC) + timedelta(minutes=17)) == 1
    (alert,) = await car.alerts()
    assert (alert.started_ts, alert.fired_ts) == (made, made + 15 * 60_000)


async def test_imported_samples_never_fire_a_rule(car: Car) -> None:
    await car.rule(**HOT, duration_s=20)
    t0 = minutes_ago(10)
    # A log of a hot engine, imported: the import's own worker evaluates nothing (backfill) ...
    rows = "".join(f"{(t0 + i * 5_000) / 1000:.0f},{120}\n" for i in range(12))
    summary = await import_log(
        car.app.state.obd2.sessionmaker,
        car.vehicle_id,
        f"timestamp,COOLANT_TEMP\n{rows}".encode(),
        ImportOptions(),
    )
    assert summary.stored == 12
    # ... and a live sample in the same minutes, which evaluates the rule over that window,
    # does not read the imported ones either.
    await car.send([(t0 + 70_000, "COOLANT_TEMP", 84.0)])
    await car.work()
    assert await car.alerts() == []
    # The same readings sent live fire: the import, not the values, kept it quiet.
    await car.send(_coolant(t0 + 75_000, [120.0] * 6))
    await car.work()
    (alert,) = await car.alerts()
    assert alert.started_ts == t0 + 75_000


async def test_a_rule_is_edited_and_its_cooldown_decides_how_often_it_fires(car: Car) -> None:
    # "Speed above 80 for 2 s" on a car passing 80 km/h every 30 s.
    base = f"/api/v1/vehicles/{car.vehicle_id}/alert-rules"
    rule = await car.rule(kind="threshold", pid="SPEED", op="above", threshold=80, duration_s=2)
    assert rule["cooldown_s"] == 300  # the default
    t0 = minutes_ago(20)
    lap = [90.0] * 5 + [50.0] * 25  # 5 s above 80, then 25 s below: every 30 s
    await car.send(_speed(t0, lap * 10))  # 5 minutes
    await car.work()
    assert len(await car.alerts()) == 1  # the cooldown keeps the other nine quiet

    renamed = await car.owner.patch(f"{base}/{rule['id']}", json={"name": "Fast"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "Fast"
    edited = await car.owner.patch(f"{base}/{rule['id']}", json={"cooldown_s": 0})
    assert edited.status_code == 200, edited.text
    assert edited.json()["cooldown_s"] == 0
    t1 = t0 + 6 * 60_000
    await car.send(_speed(t1, lap * 4))
    await car.work()
    fired = [a for a in await car.alerts() if a.fired_ts >= t1]
    assert [a.fired_ts for a in fired] == [t1 + n * 30_000 + 2_000 for n in range(4)]
    assert all(a.rule_name == "Fast" for a in fired)

    refused = await car.owner.patch(f"{base}/{rule['id']}", json={"cooldown_s": -1})
    assert refused.status_code == 422


async def test_changing_the_condition_restarts_the_rule_from_the_change(car: Car) -> None:
    base = f"/api/v1/vehicles/{car.vehicle_id}/alert-rules"
    rule = await car.rule(**HOT, made_ms=None)
    made = rule["evaluated_from_ts"]
    renamed = (await car.owner.patch(f"{base}/{rule['id']}", json={"name": "Hot"})).json()
    assert renamed["evaluated_from_ts"] == made
    changed = (await car.owner.patch(f"{base}/{rule['id']}", json={"threshold": 80})).json()
    assert changed["evaluated_from_ts"] >= made
    paused = (await car.owner.patch(f"{base}/{rule['id']}", json={"enabled": False})).json()
    assert paused["evaluated_from_ts"] == changed["evaluated_from_ts"]
    await car.backdate(int(str(rule["id"])), made - 3_600_000)  # type: ignore[operator]
    resumed = (await car.owner.patch(f"{base}/{rule['id']}", json={"enabled": True})).json()
    assert resumed["evaluated_from_ts"] >= made
    # Samples of before the change fire nothing, though the new threshold is crossed.
    await car.send(_coolant(minutes_ago(3), [82.0] * 20))
    await car.work()
    assert await car.alerts() == []


async def test_texts_are_in_each_readers_units_with_display_names(car: Car) -> None:
    world = World(car.app, car.client)
    try:
        await world.user("viewer@example.com")
        viewer = await world.login("viewer@example.com")
        await share_and_accept(car.owner, viewer, car.vehicle_id, "viewer@example.com")
        prefs = await viewer.patch("/api/v1/me/preferences", json={"units": "imperial_us"})
        assert prefs.status_code == 200, prefs.text
        await car.rule(**HOT)
        await car.rule(kind="threshold", pid="SPEED", op="above", threshold=80, duration_s=2)
        t0 = minutes_ago(10)
        await car.send(_coolant(t0, [80.0, 90.0, 90.0]))
        await car.send(_speed(t0 + 60_000, [70.0, 92.0, 92.0, 92.0]))
        await car.work()

        mine = {a["subject"]: a for a in await _history(car.owner, car)}
        theirs = {a["subject"]: a for a in await _history(viewer, car)}
        assert mine["COOLANT_TEMP"]["message"] == "Engine coolant temperature 90 °C above 85 °C"
        assert theirs["COOLANT_TEMP"]["message"] == (
            "Engine coolant temperature 194 °F above 185 °F"
        )
        assert mine["SPEED"]["message"] == "Vehicle speed 92 km/h above 80 km/h for 2 s"
        assert theirs["SPEED"]["message"] == "Vehicle speed 57.17 mph above 49.71 mph for 2 s"
        assert mine["SPEED"]["subject_name"] == theirs["SPEED"]["subject_name"] == "Vehicle speed"
        # The webhook and MQTT bodies keep the owner's text (metric here).
        sent = {json.loads(d.body)["alert"]["message"] for d in await car.deliveries()}
        assert sent == {mine["COOLANT_TEMP"]["message"], mine["SPEED"]["message"]}
    finally:
        await world.close()


async def test_history_is_in_time_order_newest_first_and_pages_on(car: Car) -> None:
    await car.rule(**HOT, cooldown_s=0)
    t0 = minutes_ago(30)
    # Three episodes sent out of time order: the alert of the latest gets the lowest id.
    for start in (t0 + 20 * 60_000, t0, t0 + 10 * 60_000):
        await car.send(_coolant(start, [90.0, 90.0, 80.0]))
        await car.work()
    by_id = sorted(await car.alerts(), key=lambda a: a.id)
    assert [a.fired_ts for a in by_id] == [t0 + 20 * 60_000, t0, t0 + 10 * 60_000]

    listed = await _history(car.owner, car)
    assert [a["fired_ts"] for a in listed] == [t0 + 20 * 60_000, t0 + 10 * 60_000, t0]
    pages: list[int] = []
    cursor = ""
    for _ in range(4):
        page = await _history(car.owner, car, f"?limit=1{cursor}")
        if not page:
            break
        pages += [int(str(a["fired_ts"])) for a in page]
        cursor = f"&before_id={page[-1]['id']}"
    assert pages == [a["fired_ts"] for a in listed]
    two = await _history(car.owner, car, "?limit=2")
    rest = await _history(car.owner, car, f"?limit=2&before_id={two[-1]['id']}")
    assert [a["id"] for a in two + rest] == [a["id"] for a in listed]


async def test_the_vehicle_counts_its_open_alerts(car: Car) -> None:
    await car.rule(**HOT, cooldown_s=0)
    vehicle_url = f"/api/v1/vehicles/{car.vehicle_id}"
    assert (await car.owner.get(vehicle_url)).json()["open_alerts"] == 0
    t0 = minutes_ago(5)
    await car.send(_coolant(t0, [90.0, 91.0]))
    await car.work()
    (listed,) = (await car.owner.get("/api/v1/vehicles")).json()
    assert listed["open_alerts"] == 1
    assert (await car.owner.get(vehicle_url)).json()["open_alerts"] == 1
    await car.send(_coolant(t0 + 10_000, [80.0]))  # the episode ends: the alert clears
    await car.work()
    assert (await car.owner.get(vehicle_url)).json()["open_alerts"] == 0
