"""Units through the API, on both backends: the preference, the table the UI converts with,
CSV exports in the user's units, and alert thresholds given in them."""

import csv
import io
import json

import httpx
import pytest

from tests.alerts.helpers import Car, minutes_ago
from tests.conftest import World
from tests.trips.helpers import drive, run_worker

PREFERENCES = "/api/v1/me/preferences"


async def _choose(client: httpx.AsyncClient, units: str) -> None:
    response = await client.patch(PREFERENCES, json={"units": units})
    assert response.status_code == 200, response.text
    assert response.json() == {"units": units}


def _csv(response: httpx.Response) -> list[list[str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.text)))


async def test_each_user_chooses_units_metric_by_default(car: Car) -> None:
    assert (await car.owner.get(PREFERENCES)).json() == {"units": "metric"}
    await _choose(car.owner, "imperial_uk")
    assert (await car.owner.get(PREFERENCES)).json() == {"units": "imperial_uk"}
    # Saved on the user, not the browser: a new sign-in reads it back.

    world = World(car.app, car.client)
    again = await world.login("owner@example.com")
    assert (await again.get(PREFERENCES)).json() == {"units": "imperial_uk"}
    # Someone else's choice is their own.
    await world.user("other@example.com")
    other = await world.login("other@example.com")
    assert (await other.get(PREFERENCES)).json() == {"units": "metric"}
    # An empty change changes nothing; a system we do not have is refused, naming the choices.
    assert (await again.patch(PREFERENCES, json={})).json() == {"units": "imperial_uk"}
    bad = await again.patch(PREFERENCES, json={"units": "imperial"})
    assert bad.status_code == 422
    assert "metric" in bad.text
    assert "imperial_us" in bad.text
    assert (await again.patch(PREFERENCES, json={"unit": "metric"})).status_code == 422
    assert (await again.get(PREFERENCES)).json() == {"units": "imperial_uk"}
    # Signed out: no preferences to read or change.
    assert (await car.client.get(PREFERENCES)).status_code == 401
    await world.close()


async def test_the_unit_table_the_web_ui_converts_with(car: Car) -> None:
    response = await car.owner.get("/api/v1/units")
    assert response.status_code == 200
    table = response.json()
    assert [s["id"] for s in table["systems"]] == ["metric", "imperial_us", "imperial_uk"]
    units = {u["unit"]: u for u in table["units"]}
    speed = units["km/h"]
    assert "kph" in speed["aliases"]  # the PID table's name for it
    assert speed["systems"]["imperial_us"]["unit"] == "mph"
    assert speed["systems"]["imperial_us"]["scale"] == pytest.approx(1 / 1.609344)
    assert "metric" not in speed["systems"]
    temperature = units["°C"]["systems"]["imperial_uk"]
    assert (temperature["scale"], temperature["offset"]) == (1.8, 32.0)
    economy = units["L/100km"]["systems"]
    assert economy["imperial_us"]["inverse"] is True
    assert economy["imperial_uk"]["unit"] == "mpg UK"
    assert units["rpm"]["systems"] == {}
    assert (await car.client.get("/api/v1/units")).status_code == 401


async def test_csv_export_is_in_the_users_units_and_says_them(car: Car) -> None:
    t0 = minutes_ago(30)
    await car.send(
        [
            (t0, "SPEED", 100.0),
            (t0, "COOLANT_TEMP", 90.0),
            (t0, "INTAKE_PRESSURE", 101.325),
            (t0 + 1000, "SPEED", 50.0),
            (t0 + 1000, "RPM", 2000.0),
        ]
    )
    url = f"/api/v1/vehicles/{car.vehicle_id}/samples.csv"
    params: dict[str, str | int] = {
        "pid": "SPEED,COOLANT_TEMP,RPM,INTAKE_PRESSURE",
        "from": t0,
        "to": t0 + 2000,
    }
    metric = _csv(await car.owner.get(url, params=params))
    assert metric[0] == [
        "ts",
        "time",
        "COOLANT_TEMP (°C)",
        "INTAKE_PRESSURE (kPa)",
        "RPM (rpm)",
        "SPEED (km/h)",
    ]
    assert metric[1][2:] == ["90.0", "101.325", "", "100.0"]
    assert metric[2][2:] == ["", "", "2000.0", "50.0"]

    await _choose(car.owner, "imperial_us")
    imperial = _csv(await car.owner.get(url, params=params))
    assert imperial[0][2:] == [
        "COOLANT_TEMP (°F)",
        "INTAKE_PRESSURE (psi)",
        "RPM (rpm)",
        "SPEED (mph)",
    ]
    assert [r[0] for r in imperial[1:]] == [str(t0), str(t0 + 1000)]
    coolant, pressure, rpm, speed = (float(v) if v else None for v in imperial[1][2:])
    assert coolant == pytest.approx(194.0)
    assert pressure == pytest.approx(14.6959, rel=1e-5)
    assert rpm is None
    assert speed == pytest.approx(62.1371, rel=1e-5)
    assert float(imperial[2][5]) == pytest.approx(31.0686, rel=1e-5)
    assert imperial[2][4] == "2000.0"

    # ?units= overrides the preference, either way.
    assert _csv(await car.owner.get(url, params={**params, "units": "metric"})) == metric
    uk = _csv(await car.owner.get(url, params={**params, "units": "imperial_uk"}))
    assert uk[0] == imperial[0]
    bad = await car.owner.get(url, params={**params, "units": "furlongs"})
    assert bad.status_code == 422
    assert "imperial_uk" in bad.text


async def test_trip_csv_is_in_the_users_units(car: Car) -> None:
    t0 = minutes_ago(60)
    await car.send([*drive(t0, 20, speed=80.0), (t0, "FUEL_RATE", 6.0)])
    await run_worker(car.app)
    trips = (await car.owner.get(f"/api/v1/vehicles/{car.vehicle_id}/trips")).json()
    (trip,) = trips
    url = f"/api/v1/vehicles/{car.vehicle_id}/trips/{trip['id']}.csv"
    await _choose(car.owner, "imperial_uk")
    rows = _csv(await car.owner.get(url))
    # Only the PIDs the trip has, in the user's units.
    assert rows[0] == ["ts", "time", "FUEL_RATE (UK gal/h)", "RPM (rpm)", "SPEED (mph)"]
    assert len(rows) == 1 + 20
    assert float(rows[1][2]) == pytest.approx(6.0 / 4.54609)
    assert float(rows[1][4]) == pytest.approx(80 / 1.609344)
    assert all(r[2] == "" for r in rows[2:])
    metric = _csv(await car.owner.get(url, params={"units": "metric"}))
    assert metric[0][2:] == ["FUEL_RATE (L/h)", "RPM (rpm)", "SPEED (km/h)"]
    assert metric[1][2:] == ["6.0", "2000.0", "80.0"]


HOT = {"name": "Hot", "kind": "threshold", "pid": "COOLANT_TEMP", "op": "above"}


async def test_alert_threshold_in_the_users_units_round_trips(car: Car) -> None:
    await _choose(car.owner, "imperial_us")
    created = await car.rule(**HOT, threshold=221, clear_threshold=212, unit="°F")
    # Stored in the PID's unit; shown back in the user's.
    assert (created["threshold"], created["clear_threshold"], created["unit"]) == (
        pytest.approx(105.0),
        pytest.approx(100.0),
        "°C",
    )
    assert created["display"] == {
        "unit": "°F",
        "op": "above",
        "threshold": 221.0,
        "clear_threshold": 212.0,
    }
    rules = f"/api/v1/vehicles/{car.vehicle_id}/alert-rules"
    read = (await car.owner.get(f"{rules}/{created['id']}")).json()
    assert read["display"] == created["display"]
    changed = await car.owner.patch(
        f"{rules}/{created['id']}", json={"threshold": 230, "unit": "°F"}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["threshold"] == pytest.approx(110.0)
    assert changed.json()["display"]["threshold"] == 230.0
    assert changed.json()["display"]["clear_threshold"] == 212.0
    # A metric user reads the same rule in °C; without a unit, figures are the stored unit's.
    await _choose(car.owner, "metric")
    metric = (await car.owner.get(f"{rules}/{created['id']}")).json()
    assert metric["display"] == {
        "unit": "°C",
        "op": "above",
        "threshold": 110.0,
        "clear_threshold": 100.0,
    }
    plain = await car.rule(**HOT, threshold=120)
    assert plain["threshold"] == 120
    # A unit that is not the PID's, or a unit on a rule with no threshold, is refused.
    wrong = await car.owner.post(rules, json={**HOT, "threshold": 70, "unit": "mph"})
    assert wrong.status_code == 422
    assert "'mph' does not measure temperature" in wrong.json()["detail"]
    assert "'°F'" in wrong.json()["detail"]
    silence = await car.owner.post(
        rules, json={"name": "Quiet", "kind": "silence", "silence_minutes": 5, "unit": "°F"}
    )
    assert silence.status_code == 422
    assert "unit is for threshold rules" in silence.text
    patched = await car.owner.patch(f"{rules}/{plain['id']}", json={"threshold": 1, "unit": "psi"})
    assert patched.status_code == 422
    assert (await car.owner.get(f"{rules}/{plain['id']}")).json()["threshold"] == 120


async def test_alert_message_and_webhook_say_the_owners_units(car: Car) -> None:
    await _choose(car.owner, "imperial_uk")
    await car.rule(**HOT, threshold=221, unit="°F", duration_s=0)
    t0 = minutes_ago(10)
    await car.send([(t0, "COOLANT_TEMP", 100.0), (t0 + 5000, "COOLANT_TEMP", 115.0)])
    await car.work()
    (alert,) = await car.alerts()
    assert alert.value == 115.0  # stored as read
    assert alert.message == "Engine coolant temperature 239 °F above 221 °F"
    (delivery,) = await car.deliveries()
    body = json.loads(delivery.body)["alert"]
    assert (body["value"], body["unit"]) == (115.0, "°C")
    assert body["display"] == {"value": 239.0, "unit": "°F", "units": "imperial_uk"}
    assert body["message"] == alert.message
    listed = (await car.owner.get(f"/api/v1/vehicles/{car.vehicle_id}/alerts")).json()
    assert listed[0]["message"] == "Engine coolant temperature 239 °F above 221 °F"
