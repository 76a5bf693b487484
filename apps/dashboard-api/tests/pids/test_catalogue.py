import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import event, text

from obd2_dashboard.pids.definitions import builtin_catalogue
from obd2_protocol import PIDS
from tests.conftest import World
from tests.torque.uploads import send

NOW = int(time.time() * 1000)


async def _ingest(
    client: httpx.AsyncClient, token: str, samples: list[tuple[int, int, str, float]]
) -> None:
    response = await client.post(
        "/api/v1/ingest",
        json={"samples": [{"seq": s, "ts": t, "pid": p, "value": v} for s, t, p, v in samples]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text


@contextmanager
def catalogue_statements(world: World) -> Iterator[list[str]]:
    """The statements that touch the catalogue while the block runs."""
    seen: list[str] = []
    engine = world.app.state.obd2.engine.sync_engine

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "vehicle_pids" in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


async def test_ingest_records_each_pid_once_with_its_oldest_sample(world: World) -> None:
    owner = await world.user("catalogue@example.com")
    vehicle = await world.vehicle(owner)
    _, token = await world.device(vehicle)
    client = await world.login("catalogue@example.com")
    with catalogue_statements(world) as first:
        await _ingest(
            world.client,
            token,
            [(1, NOW - 50_000, "RPM", 900.0), (2, NOW - 60_000, "ELM_VOLTAGE", 12.4)],
        )
    assert first  # the new names were recorded
    with catalogue_statements(world) as known:
        await _ingest(world.client, token, [(3, NOW - 40_000, "RPM", 950.0)])
    assert known == []  # a batch of known PIDs costs the catalogue nothing
    listed = (await client.get(f"/api/v1/vehicles/{vehicle}/pids")).json()
    assert listed == [
        {
            "name": "ELM_VOLTAGE",
            "display_name": PIDS["ELM_VOLTAGE"].description,
            "short_name": None,
            "unit": "volt",
            "source": "agent",
            "standard": True,
            "first_seen_ts": NOW - 60_000,
        },
        {
            "name": "RPM",
            "display_name": "Engine speed",
            "short_name": None,
            "unit": "rpm",
            "source": "obd",
            "standard": True,
            "first_seen_ts": NOW - 50_000,
        },
    ]
    # Older history (a late spool, an import) moves the first sample back.
    await _ingest(world.client, token, [(4, NOW - 3_600_000, "RPM", 800.0)])
    listed = (await client.get(f"/api/v1/vehicles/{vehicle}/pids")).json()
    assert [p["first_seen_ts"] for p in listed] == [NOW - 60_000, NOW - 3_600_000]
    await client.aclose()


async def test_the_servers_own_names_are_listed_with_labels_and_units(
    alice: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    response = await alice.get("/api/v1/pids")
    assert response.status_code == 200
    listed = {p["name"]: p for p in response.json()}
    assert list(listed)[: len(PIDS)] == list(PIDS)
    assert listed["COOLANT_TEMP"] == {
        "name": "COOLANT_TEMP",
        "display_name": "Engine coolant temperature",
        "short_name": None,
        "unit": "degC",
        "source": "obd",
        "standard": True,
    }
    flow = listed["TORQUE_FF125D"]
    assert (flow["display_name"], flow["short_name"], flow["unit"], flow["source"]) == (
        "Fuel flow rate/hour",
        "Fuel Flow",
        "liters_per_hour",
        "torque",
    )
    assert len(listed) == len(builtin_catalogue())
    assert (await client.get("/api/v1/pids")).status_code == 401  # not signed in


async def test_history_and_csv_take_the_vehicles_own_pids(world: World) -> None:
    owner = await world.user("history@example.com")
    phone_car = await world.vehicle(owner, "Torque car")
    other_car = await world.vehicle(owner, "Other car")
    _, token = await world.device(phone_car, "phone")
    for i in range(5):
        upload = [("time", str(NOW - 10_000 + i * 1000)), ("kc", "1500"), ("kff125d", str(2.0 + i))]
        assert (await send(world.client, token, upload)).text == "OK!"
    client = await world.login("history@example.com")
    window = {"from": NOW - 60_000, "to": NOW + 1}
    flow = await client.get(
        f"/api/v1/vehicles/{phone_car}/samples", params={"pid": "TORQUE_FF125D", **window}
    )
    assert flow.status_code == 200
    assert sum(flow.json()["count"]) == 5
    elsewhere = await client.get(
        f"/api/v1/vehicles/{other_car}/samples", params={"pid": "TORQUE_FF125D", **window}
    )
    assert elsewhere.status_code == 422
    assert elsewhere.json()["detail"] == "unknown PID 'TORQUE_FF125D'"
    nonsense = await client.get(
        f"/api/v1/vehicles/{phone_car}/samples", params={"pid": "rpm; drop", **window}
    )
    assert nonsense.status_code == 422
    csv = await client.get(
        f"/api/v1/vehicles/{phone_car}/samples.csv", params={"pid": "RPM,TORQUE_FF125D", **window}
    )
    assert csv.status_code == 200
    header, *rows = csv.text.strip().splitlines()
    # Torque's fuel flow converts like any PID: its unit comes from Torque's published list.
    assert header == "ts,time,RPM (rpm),TORQUE_FF125D (L/h)"
    assert len(rows) == 5
    imperial = await client.get(
        f"/api/v1/vehicles/{phone_car}/samples.csv",
        params={"pid": "TORQUE_FF125D", "units": "imperial_uk", **window},
    )
    assert imperial.text.splitlines()[0] == "ts,time,TORQUE_FF125D (UK gal/h)"
    await client.aclose()


async def test_a_vehicles_pids_are_its_owners_and_go_with_it(world: World) -> None:
    owner = await world.user("mine@example.com")
    vehicle = await world.vehicle(owner)
    _, token = await world.device(vehicle, "phone")
    upload = [("time", str(NOW)), ("kc", "900"), ("notice", "Trip started")]
    assert (await send(world.client, token, upload)).text == "OK!"
    await world.user("nosy@example.com")
    nosy = await world.login("nosy@example.com")
    assert (await nosy.get(f"/api/v1/vehicles/{vehicle}/pids")).status_code == 404
    client = await world.login("mine@example.com")
    assert (await client.get(f"/api/v1/vehicles/{vehicle}/pids")).json()
    assert (await client.delete(f"/api/v1/vehicles/{vehicle}")).status_code == 204
    async with world.app.state.obd2.sessionmaker() as session:
        for table in ("vehicle_pids", "vehicle_events"):
            left = await session.execute(text(f"SELECT count(*) FROM {table}"))
            assert left.scalar_one() == 0, table
    # A vehicle made next may get the same id (SQLite): its PIDs are recorded afresh.
    again = await world.vehicle(owner)
    _, token = await world.device(again, "phone")
    assert (await send(world.client, token, [("time", str(NOW)), ("kc", "900")])).text == "OK!"
    listed = (await client.get(f"/api/v1/vehicles/{again}/pids")).json()
    assert [p["name"] for p in listed] == ["RPM"]
    await client.aclose()
    await nosy.aclose()
