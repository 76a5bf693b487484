import httpx

from obd2_dashboard.alerts.firing import raise_dtc_alert
from obd2_dashboard.kit.db import session_scope
from obd2_testkit.network import LoopbackOnly
from tests.alerts.helpers import PUBLIC_ADDRESS, Car
from tests.conftest import World

HOT = {
    "name": "Coolant hot",
    "kind": "threshold",
    "pid": "COOLANT_TEMP",
    "op": "above",
    "threshold": 105,
    "duration_s": 30,
}


def _rules(car: Car) -> str:
    return f"/api/v1/vehicles/{car.vehicle_id}/alert-rules"


async def _other(car: Car) -> httpx.AsyncClient:
    world = World(car.app, car.client)
    await world.user("mallory@example.com")
    return await world.login("mallory@example.com")


async def test_rule_crud(car: Car, network: LoopbackOnly) -> None:
    network.names["hooks.example.com"] = [PUBLIC_ADDRESS]  # looked up, never connected to
    created = await car.owner.post(
        _rules(car), json={**HOT, "webhook_url": "https://hooks.example.com/hook"}
    )
    assert created.status_code == 201, created.text
    rule = created.json()
    assert rule["clear_threshold"] is None
    assert rule["cooldown_s"] == 300
    assert rule["firing"] is False
    assert len(rule["webhook_secret"]) >= 32  # generated: there is a URL to sign for
    url = f"{_rules(car)}/{rule['id']}"
    assert (await car.owner.get(url)).json() == rule
    changed = await car.owner.patch(url, json={"clear_threshold": 100, "cooldown_s": 60})
    assert changed.status_code == 200, changed.text
    assert changed.json()["clear_threshold"] == 100
    assert changed.json()["webhook_secret"] == rule["webhook_secret"]
    listed = (await car.owner.get(_rules(car))).json()
    assert [r["id"] for r in listed] == [rule["id"]]
    assert (await car.owner.delete(url)).status_code == 204
    assert (await car.owner.get(url)).status_code == 404
    assert (await car.owner.get(_rules(car))).json() == []


async def test_invalid_rules_are_422_with_a_clear_message(car: Car) -> None:
    bad = [
        ({**HOT, "pid": "NOT_A_PID"}, "unknown PID"),
        ({**HOT, "op": None}, "needs pid, op and threshold"),
        ({**HOT, "clear_threshold": 110}, "clear_threshold"),
        ({**HOT, "threshold": "nan"}, "threshold"),
        ({"name": "s", "kind": "silence"}, "silence_minutes"),
        ({"name": "d", "kind": "dtc", "pid": "RPM"}, "not dtc"),
        ({**HOT, "webhook_url": "ftp://example.com/x"}, "webhook_url"),
        ({**HOT, "webhook_secret": "short"}, "webhook_secret"),
        ({**HOT, "duration_s": -1}, "duration_s"),
        ({**HOT, "surprise": 1}, "surprise"),
    ]
    for body, expected in bad:
        response = await car.owner.post(_rules(car), json=body)
        assert response.status_code == 422, (body, response.text)
        assert expected in response.text, (expected, response.text)
    # A device of another vehicle cannot be watched.
    response = await car.owner.post(
        _rules(car),
        json={"name": "s", "kind": "silence", "silence_minutes": 5, "device_id": 999_999},
    )
    assert response.status_code == 422
    assert "not a device of this vehicle" in response.json()["detail"]
    # A partial update that would make the rule invalid as a whole is refused too.
    rule = (await car.owner.post(_rules(car), json=HOT)).json()
    response = await car.owner.patch(f"{_rules(car)}/{rule['id']}", json={"clear_threshold": 200})
    assert response.status_code == 422
    assert "clear_threshold" in response.json()["detail"]
    assert (await car.owner.get(f"{_rules(car)}/{rule['id']}")).json()["clear_threshold"] is None
    assert len((await car.owner.get(_rules(car))).json()) == 1


async def test_writes_need_the_csrf_header(car: Car) -> None:
    token = car.owner.headers.pop("X-CSRF-Token")
    try:
        response = await car.owner.post(_rules(car), json=HOT)
        assert response.status_code == 403
        assert (await car.owner.post("/api/v1/alerts/1/acknowledge")).status_code == 403
    finally:
        car.owner.headers["X-CSRF-Token"] = token
    assert (await car.owner.get(_rules(car))).json() == []


async def test_history_and_acknowledge(car: Car) -> None:
    await car.owner.post(_rules(car), json={"name": "codes", "kind": "dtc", "cooldown_s": 0})
    async with session_scope(car.app.state.obd2.sessionmaker) as session:
        for code in ("P0301", "P0302", "P0303"):
            await raise_dtc_alert(session, car.vehicle_id, code, "stored")
    url = f"/api/v1/vehicles/{car.vehicle_id}/alerts"
    history = (await car.owner.get(url)).json()
    assert [a["subject"] for a in history] == ["P0303", "P0302", "P0301"]
    assert history[0]["deliveries"] == [
        {
            "channel": "mqtt",
            "event": "fired",
            "status": "pending",
            "attempts": 0,
            "last_error": None,
            "response_status": None,
            "delivered_at": None,
        }
    ]
    page = (await car.owner.get(url, params={"limit": 1, "before_id": history[0]["id"]})).json()
    assert [a["subject"] for a in page] == ["P0302"]
    acked = await car.owner.post(f"/api/v1/alerts/{history[1]['id']}/acknowledge")
    assert acked.status_code == 200, acked.text
    first_ack = acked.json()["acknowledged_at"]
    assert first_ack is not None
    again = await car.owner.post(f"/api/v1/alerts/{history[1]['id']}/acknowledge")
    assert again.json()["acknowledged_at"] == first_ack
    open_only = (await car.owner.get(url, params={"unacknowledged": True})).json()
    assert [a["subject"] for a in open_only] == ["P0303", "P0301"]
    assert (await car.owner.get(url, params={"limit": 0})).status_code == 422


async def test_another_users_rules_and_alerts_are_404(car: Car) -> None:
    rule = (await car.owner.post(_rules(car), json={"name": "c", "kind": "dtc"})).json()
    async with session_scope(car.app.state.obd2.sessionmaker) as session:
        (alert,) = await raise_dtc_alert(session, car.vehicle_id, "P0171", "pending")
    mallory = await _other(car)
    try:
        rule_url = f"{_rules(car)}/{rule['id']}"
        for response in (
            await mallory.get(_rules(car)),
            await mallory.post(_rules(car), json=HOT),
            await mallory.get(rule_url),
            await mallory.patch(rule_url, json={"enabled": False}),
            await mallory.delete(rule_url),
            await mallory.get(f"/api/v1/vehicles/{car.vehicle_id}/alerts"),
            await mallory.post(f"/api/v1/alerts/{alert.id}/acknowledge"),
            await mallory.post("/api/v1/alerts/999999/acknowledge"),
        ):
            assert response.status_code == 404, response.text
    finally:
        await mallory.aclose()
    assert (await car.owner.get(rule_url)).json()["enabled"] is True
    history = (await car.owner.get(f"/api/v1/vehicles/{car.vehicle_id}/alerts")).json()
    assert history[0]["acknowledged_at"] is None
    # Signed out: 401.
    assert (await car.client.get(_rules(car))).status_code == 401


async def test_deleting_a_rule_keeps_its_history(car: Car) -> None:
    rule = (await car.owner.post(_rules(car), json={"name": "c", "kind": "dtc"})).json()
    async with session_scope(car.app.state.obd2.sessionmaker) as session:
        await raise_dtc_alert(session, car.vehicle_id, "P0171", "pending")
    assert (await car.owner.delete(f"{_rules(car)}/{rule['id']}")).status_code == 204
    (alert,) = (await car.owner.get(f"/api/v1/vehicles/{car.vehicle_id}/alerts")).json()
    assert alert["rule_id"] is None
    assert alert["rule_name"] == "c"


async def test_alert_routes_are_in_the_openapi_document(car: Car) -> None:
    paths = (await car.client.get("/api/v1/openapi.json")).json()["paths"]
    assert "/api/v1/vehicles/{vehicle_id}/alert-rules" in paths
    assert "/api/v1/vehicles/{vehicle_id}/alert-rules/{rule_id}" in paths
    assert "/api/v1/vehicles/{vehicle_id}/alerts" in paths
    assert "/api/v1/alerts/{alert_id}/acknowledge" in paths
