"""Alert evaluation in the worker, on both backends, with real ingest."""

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from obd2_dashboard.alerts.firing import check_silence, evaluate_touched, raise_dtc_alert
from obd2_dashboard.kit.db import session_scope
from obd2_dashboard.models import Device
from obd2_testkit.network import LoopbackOnly
from tests.alerts.helpers import PUBLIC_ADDRESS, Car, minutes_ago

HOT_RULE = {
    "kind": "threshold",
    "pid": "COOLANT_TEMP",
    "op": "above",
    "threshold": 105,
    "clear_threshold": 100,
    "duration_s": 30,
    "cooldown_s": 600,
}


def _coolant(
    start: int, values: Sequence[float], step_ms: int = 5_000
) -> list[tuple[int, str, float]]:
    return [(start + i * step_ms, "COOLANT_TEMP", v) for i, v in enumerate(values)]


async def test_coolant_over_105_for_30_s_fires_once_even_when_evaluated_again(car: Car) -> None:
    rule = await car.rule(**HOT_RULE)
    t0 = minutes_ago(10)
    batch = await car.send(_coolant(t0, [100, 106, 107, 108, 109, 110, 111, 112]))
    await car.work()
    (alert,) = await car.alerts()
    assert alert.rule_id == rule["id"]
    assert (alert.started_ts, alert.fired_ts) == (t0 + 5_000, t0 + 35_000)
    assert alert.value == 112
    assert alert.cleared_ts is None
    assert alert.message == "Engine coolant temperature 112 °C above 105 °C for 30 s"
    # The same batch delivered again (at-least-once), and the same batch sent again by the agent.
    async with session_scope(car.app.state.obd2.sessionmaker) as session:
        await evaluate_touched(session, {car.vehicle_id: [("COOLANT_TEMP", t0 - t0 % 60_000)]})
    assert await car.post(batch) == {"accepted": 0, "duplicates": len(batch)}
    await car.work()
    assert len(await car.alerts()) == 1
    (delivery,) = await car.deliveries()
    assert (delivery.channel, delivery.event, delivery.status) == ("mqtt", "fired", "pending")
    body = json.loads(delivery.body)
    assert body["type"] == "alert.fired"
    assert body["alert"]["fired_ts"] == t0 + 35_000
    rules = (await car.owner.get(f"/api/v1/vehicles/{car.vehicle_id}/alert-rules")).json()
    assert rules[0]["firing"] is True


async def test_late_and_out_of_order_samples_fire_as_if_in_order(car: Car) -> None:
    await car.rule(**HOT_RULE)
    t0 = minutes_ago(10)
    values = [100, 106, 107, 108, 109, 110, 111, 112, 99]
    rows = _coolant(t0, values)
    # The newer half first: 20 s over the threshold is not yet 30 s.
    await car.send(rows[5:])
    await car.work()
    assert await car.alerts() == []
    # The older half arrives late (a spool catching up), itself in reverse order.
    await car.send(rows[:5][::-1])
    await car.work()
    (alert,) = await car.alerts()
    assert (alert.started_ts, alert.fired_ts, alert.cleared_ts) == (
        t0 + 5_000,
        t0 + 35_000,
        t0 + 40_000,
    )
    # Only "fired": it had already cleared when it was found, so no separate "cleared".
    assert [d.event for d in await car.deliveries()] == ["fired"]


async def test_hysteresis_clear_and_cooldown(car: Car, network: LoopbackOnly) -> None:
    network.names["hooks.example.com"] = [PUBLIC_ADDRESS]  # looked up, never connected to
    await car.rule(**{**HOT_RULE, "webhook_url": "https://hooks.example.com/hook"})
    t0 = minutes_ago(30)
    # Over for 40 s, between the thresholds (still firing), then below 100: cleared.
    await car.send(_coolant(t0, [106] * 9 + [103, 102] + [99]))
    await car.work()
    (alert,) = await car.alerts()
    assert alert.cleared_ts == t0 + 11 * 5_000
    # Hot again two minutes later: within the 10 min cooldown, so no second alert.
    await car.send(_coolant(t0 + 180_000, [110] * 10))
    await car.work()
    assert len(await car.alerts()) == 1
    # Hot again 15 minutes later: a new alert.
    await car.send(_coolant(t0 + 900_000, [110] * 10))
    await car.work()
    first, second = await car.alerts()
    assert second.started_ts == t0 + 900_000
    events = sorted((d.alert_id, d.channel, d.event) for d in await car.deliveries())
    assert events == [
        (first.id, "mqtt", "fired"),
        (first.id, "webhook", "fired"),
        (second.id, "mqtt", "fired"),
        (second.id, "webhook", "fired"),
    ]


async def test_an_open_alert_clears_when_the_value_drops(car: Car) -> None:
    await car.rule(**HOT_RULE)
    t0 = minutes_ago(10)
    await car.send(_coolant(t0, [110] * 8))
    await car.work()
    (alert,) = await car.alerts()
    assert alert.cleared_ts is None
    await car.send(_coolant(t0 + 40_000, [104, 98]))
    await car.work()
    (alert,) = await car.alerts()
    assert alert.cleared_ts == t0 + 45_000
    assert sorted(d.event for d in await car.deliveries()) == ["cleared", "fired"]
    rules = (await car.owner.get(f"/api/v1/vehicles/{car.vehicle_id}/alert-rules")).json()
    assert rules[0]["firing"] is False


async def test_battery_low_while_parked(car: Car) -> None:
    await car.rule(
        kind="threshold",
        pid="ELM_VOLTAGE",
        op="below",
        threshold=11.8,
        clear_threshold=12.2,
        duration_s=60,
        while_parked=True,
    )
    t0 = minutes_ago(20)
    # Engine running: a low reading is the alternator's business, not a parked drain.
    driving = [(t0 + i * 10_000, "ELM_VOLTAGE", 11.5) for i in range(10)]
    driving += [(t0 + i * 10_000 + 1, "RPM", 900.0) for i in range(10)]
    await car.send(driving)
    await car.work()
    assert await car.alerts() == []
    t1 = t0 + 300_000
    parked = [(t1, "RPM", 0.0), (t1, "SPEED", 0.0)]
    parked += [(t1 + i * 20_000, "ELM_VOLTAGE", 11.6) for i in range(6)]
    await car.send(parked)
    await car.work()
    (alert,) = await car.alerts()
    assert (alert.started_ts, alert.fired_ts) == (t1, t1 + 60_000)


async def test_device_silence_fires_once_and_clears_when_data_returns(car: Car) -> None:
    await car.rule(kind="silence", silence_minutes=15, device_id=car.device_id)
    sessionmaker = car.app.state.obd2.sessionmaker
    seen = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=20)
    async with session_scope(sessionmaker) as session:
        await session.execute(
            update(Device).where(Device.id == car.device_id).values(last_seen_at=seen)
        )
    for _ in range(2):
        async with session_scope(sessionmaker) as session:
            await check_silence(session)
    (alert,) = await car.alerts()
    seen_ms = int(seen.timestamp() * 1000)
    assert (alert.started_ts, alert.fired_ts) == (seen_ms, seen_ms + 15 * 60_000)
    assert alert.cleared_ts is None
    await car.send([(minutes_ago(0), "RPM", 800.0)])
    async with session_scope(sessionmaker) as session:
        await check_silence(session)
    (alert,) = await car.alerts()
    assert alert.cleared_ts is not None
    assert alert.cleared_ts > seen_ms


async def test_new_dtc_alert_is_not_repeated_within_the_cooldown(car: Car) -> None:
    await car.rule(kind="dtc", cooldown_s=3600)
    sessionmaker = car.app.state.obd2.sessionmaker
    async with session_scope(sessionmaker) as session:
        created = await raise_dtc_alert(session, car.vehicle_id, "P0301", "stored")
    assert len(created) == 1
    async with session_scope(sessionmaker) as session:
        assert await raise_dtc_alert(session, car.vehicle_id, "P0301", "stored") == []
        assert len(await raise_dtc_alert(session, car.vehicle_id, "P0420", "pending")) == 1
    alerts = await car.alerts()
    assert [(a.kind, a.subject) for a in alerts] == [("dtc", "P0301"), ("dtc", "P0420")]
    assert "pending" in alerts[1].message


async def test_disabled_rules_and_other_vehicles_fire_nothing(car: Car) -> None:
    rule = await car.rule(**HOT_RULE)
    response = await car.owner.patch(
        f"/api/v1/vehicles/{car.vehicle_id}/alert-rules/{rule['id']}", json={"enabled": False}
    )
    assert response.status_code == 200, response.text
    await car.send(_coolant(minutes_ago(5), [120] * 10))
    await car.work()
    assert await car.alerts() == []
    async with session_scope(car.app.state.obd2.sessionmaker) as session:
        assert await raise_dtc_alert(session, car.vehicle_id + 1000, "P0300", "stored") == []
