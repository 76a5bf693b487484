import csv
import io
from typing import Any

import httpx

from tests.conftest import World
from tests.telemetry.helpers import drain_outbox, rollups_match_raw

T0 = 1_780_000_000_000 - 1_780_000_000_000 % 60_000  # a whole minute


async def _seed(world: World) -> tuple[int, httpx.AsyncClient]:
    user = await world.user("hist@example.com")
    vehicle = await world.vehicle(user)
    _, token = await world.device(vehicle)
    # 10 minutes of RPM at 1 Hz: value = second index; SPEED alongside.
    samples = []
    for i in range(600):
        samples.append({"seq": 2 * i, "ts": T0 + i * 1000, "pid": "RPM", "value": float(i)})
        samples.append({"seq": 2 * i + 1, "ts": T0 + i * 1000, "pid": "SPEED", "value": 50.0})
    response = await world.client.post(
        "/api/v1/ingest", json={"samples": samples}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    return vehicle, await world.login("hist@example.com")


async def test_raw_history_downsamples_with_min_max(world: World) -> None:
    vehicle, user = await _seed(world)
    response = await user.get(
        f"/api/v1/vehicles/{vehicle}/samples",
        params={"pid": "RPM", "from": T0, "to": T0 + 600_000, "max_points": 100},
    )
    await user.aclose()
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["source"] == "raw"
    assert body["pid"] == "RPM"
    assert len(body["points"]) == 100
    assert body["bucket_ms"] == 6000
    first_ts, first_avg = body["points"][0]
    assert first_ts == T0
    assert first_avg == 2.5  # seconds 0..5
    assert body["min"][0] == 0.0
    assert body["max"][0] == 5.0
    assert sum(body["count"]) == 600


async def test_long_ranges_read_rollups_equal_to_raw(world: World) -> None:
    vehicle, user = await _seed(world)
    await drain_outbox(world.app)
    assert await rollups_match_raw(world.app) == []
    response = await user.get(
        f"/api/v1/vehicles/{vehicle}/samples",
        params={"pid": "RPM", "from": T0, "to": T0 + 86_400_000, "max_points": 1000},
    )
    await user.aclose()
    body = response.json()
    assert body["source"] == "rollup"
    assert body["bucket_ms"] % 60_000 == 0
    assert len(body["points"]) <= 1000
    assert sum(body["count"]) == 600
    assert body["min"][0] == 0.0
    assert body["max"][-1] == 599.0


async def test_a_month_reads_quarter_hours_that_follow_late_samples(world: World) -> None:
    user = await world.user("month@example.com")
    vehicle = await world.vehicle(user)
    _, token = await world.device(vehicle)
    auth = {"Authorization": f"Bearer {token}"}
    quarter = T0 - T0 % 900_000
    # Three hours of RPM every 10 s from a quarter hour, value = index.
    samples = [
        {"seq": i, "ts": quarter + i * 10_000, "pid": "RPM", "value": float(i)} for i in range(1080)
    ]
    assert (
        await world.client.post("/api/v1/ingest", json={"samples": samples}, headers=auth)
    ).is_success
    await drain_outbox(world.app)
    browser = await world.login("month@example.com")
    query: dict[str, str | int] = {
        "pid": "RPM",
        "from": quarter,
        "to": quarter + 30 * 86_400_000,
        "max_points": 1000,
    }

    body = (await browser.get(f"/api/v1/vehicles/{vehicle}/samples", params=query)).json()
    assert body["source"] == "rollup"
    assert body["bucket_ms"] == 45 * 60_000  # 44 minutes needed, whole quarter hours given
    assert body["count"] == [270, 270, 270, 270]
    assert body["points"][1] == [quarter + 2_700_000, sum(range(270, 540)) / 270]
    assert body["min"][1] == 270.0
    assert body["max"][1] == 539.0

    # A late sample from a spool, inside the first quarter hour.
    late = {"samples": [{"seq": 5000, "ts": quarter + 5_000, "pid": "RPM", "value": 10_000.0}]}
    assert (await world.client.post("/api/v1/ingest", json=late, headers=auth)).is_success
    await drain_outbox(world.app)
    assert await rollups_match_raw(world.app) == []
    body = (await browser.get(f"/api/v1/vehicles/{vehicle}/samples", params=query)).json()
    await browser.aclose()
    assert body["count"][0] == 271
    assert body["max"][0] == 10_000.0


async def test_history_validates_its_query(world: World) -> None:
    vehicle, user = await _seed(world)
    base = f"/api/v1/vehicles/{vehicle}/samples"
    bad: list[dict[str, Any]] = [
        {"pid": "RPM", "from": 10, "to": 10},
        {"pid": "RPM", "from": 20, "to": 10},
        {"pid": "RPM", "from": 0, "to": 10, "max_points": 10_001},
        {"pid": "RPM", "from": 0, "to": 10, "max_points": 0},
        {"pid": "NOT_A_PID", "from": 0, "to": 10},
        {"pid": "RPM", "from": "yesterday", "to": 10},
        {"pid": "RPM", "from": 0, "to": 10**30},
        {"from": 0, "to": 10},
    ]
    for params in bad:
        response = await user.get(base, params=params)
        assert response.status_code == 422, (params, response.text)
        assert isinstance(response.json()["detail"], str)
    missing = await user.get(
        "/api/v1/vehicles/999999/samples", params={"pid": "RPM", "from": 0, "to": 10}
    )
    await user.aclose()
    assert missing.status_code == 404


async def test_csv_export_streams_the_range(world: World) -> None:
    vehicle, user = await _seed(world)
    response = await user.get(
        f"/api/v1/vehicles/{vehicle}/samples.csv",
        params={"pid": "RPM,SPEED", "from": T0, "to": T0 + 3000},
    )
    await user.aclose()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    # A row per sample time, a column per PID with its unit (the user's: metric by default).
    assert rows[0] == ["ts", "time", "RPM (rpm)", "SPEED (km/h)"]
    assert len(rows) == 1 + 3
    assert rows[1][0] == str(T0)
    assert rows[1][1].endswith("+00:00")
    assert [float(v) for v in rows[1][2:]] == [0.0, 50.0]
    assert [float(r[2]) for r in rows[1:]] == [0.0, 1.0, 2.0]
