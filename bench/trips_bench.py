"""Trips benchmark: recomputation of a long drive, and the trips list with many trips stored.

On each backend (PostgreSQL on 127.0.0.1, embedded SQLite), in a scratch database:

- a 2-hour drive sampled at 20 Hz for each of 4 PIDs (RPM, SPEED, COOLANT_TEMP, FUEL_RATE:
  576 000 rows) is written straight into ``samples``; then the worker's trip step is timed for
  the whole drive arriving at once (full recomputation), for one late sample in its middle (full
  recomputation of the trip), and for one more second of live driving (the resumed path);
- 10 000 trips are stored for one vehicle, and ``GET /api/v1/vehicles/{id}/trips`` (first page,
  50 trips, signed in, through the ASGI app) and a page from the middle (cursor) are timed.
  Target: first page ≤ 20 ms p50.

Prints a table and writes bench/results/trips_bench.json; ``bench/run.py trips`` runs it too.

    .venv/bin/python bench/trips_bench.py [--short]
"""

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from harness import Result, Target
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import create_async_engine

from obd2_dashboard.app import create_app
from obd2_dashboard.auth.service import create_user
from obd2_dashboard.kit.db import session_scope
from obd2_dashboard.models import Trip, Vehicle
from obd2_dashboard.ops.migrations import upgrade_head
from obd2_dashboard.settings import Settings, async_database_url
from obd2_dashboard.trips.repository import TripRepository
from obd2_dashboard.trips.service import recompute_vehicle

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "trips_bench.json"
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PIDS = ("RPM", "SPEED", "COOLANT_TEMP", "FUEL_RATE")
T0 = 1_780_000_000_000 - 1_780_000_000_000 % 60_000
GAP_MS = 300_000
PASSWORD = "bench password 123"


async def _admin(sql: str) -> None:
    engine = create_async_engine(async_database_url(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(sql))
    finally:
        await engine.dispose()


def _value(pid: str, i: int) -> float:
    if pid == "RPM":
        return 800.0 + (i % 4000)
    if pid == "SPEED":
        return float((i // 20) % 130)
    if pid == "COOLANT_TEMP":
        return 90.0
    return 5.5


async def _insert_drive(app: FastAPI, vehicle_id: int, seconds: int, hz: int) -> int:
    state = app.state.obd2
    postgres = state.engine.dialect.name == "postgresql"
    step = 1000 // hz
    n = seconds * hz
    seq = 0
    chunk = 50_000
    async with session_scope(state.sessionmaker) as session:
        for pid in PIDS:
            for start in range(0, n, chunk):
                idx = range(start, min(n, start + chunk))
                seqs = [seq + i for i in idx]
                tss = [T0 + i * step for i in idx]
                vals = [_value(pid, i) for i in idx]
                if postgres:
                    await session.execute(
                        text(
                            "INSERT INTO samples (device_id, seq, vehicle_id, ts, pid, value) "
                            "SELECT 1, s.seq, :vehicle, s.ts, :pid, s.value FROM unnest("
                            "CAST(:seqs AS bigint[]), CAST(:tss AS bigint[]), "
                            "CAST(:vals AS float8[])) AS s(seq, ts, value)"
                        ),
                        {"vehicle": vehicle_id, "pid": pid, "seqs": seqs, "tss": tss, "vals": vals},
                    )
                else:
                    await session.execute(
                        text(
                            "INSERT INTO samples (device_id, seq, vehicle_id, ts, pid, value) "
                            "VALUES (1, :seq, :vehicle, :ts, :pid, :value)"
                        ),
                        [
                            {"seq": s, "vehicle": vehicle_id, "ts": t, "pid": pid, "value": v}
                            for s, t, v in zip(seqs, tss, vals, strict=True)
                        ],
                    )
            seq += n
    if postgres:
        async with state.engine.begin() as connection:
            await connection.execute(text("ANALYZE samples"))
    return n * len(PIDS)


async def _timed(action: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await action()
    return (time.perf_counter() - started) * 1000


async def _recompute(app: FastAPI, vehicle_id: int, minutes: set[int]) -> None:
    async with session_scope(app.state.obd2.sessionmaker) as session:
        await recompute_vehicle(session, vehicle_id, {("RPM", m) for m in minutes}, GAP_MS)


async def _vehicle(app: FastAPI, email: str) -> int:
    async with session_scope(app.state.obd2.sessionmaker) as session:
        user = await create_user(session, email, PASSWORD)
        vehicle = Vehicle(owner_id=user.id, name="bench")
        session.add(vehicle)
        await session.flush()
        return vehicle.id


async def _bench_recompute(app: FastAPI, seconds: int) -> list[dict[str, Any]]:
    hz = 20
    vehicle_id = await _vehicle(app, "driver@example.com")
    rows = await _insert_drive(app, vehicle_id, seconds, hz)
    end = T0 + seconds * 1000
    minutes = set(range(T0, end, 60_000))
    label = f"{seconds // 60} min drive, 20 Hz x 4 PIDs ({rows} rows)"
    full = await _timed(lambda: _recompute(app, vehicle_id, minutes))
    async with app.state.obd2.sessionmaker() as session:
        trips = (await session.execute(text("SELECT count(*), max(distance_km) FROM trips"))).one()
    assert trips[0] == 1, trips

    async def late_sample() -> None:
        mid = T0 + seconds * 500 + 7
        async with session_scope(app.state.obd2.sessionmaker) as session:
            await session.execute(
                text(
                    "INSERT INTO samples (device_id, seq, vehicle_id, ts, pid, value) "
                    "VALUES (2, 1, :v, :ts, 'SPEED', 50)"
                ),
                {"v": vehicle_id, "ts": mid},
            )
        await _recompute(app, vehicle_id, {mid - mid % 60_000})

    late = await _timed(late_sample)

    async def one_more_second() -> None:
        async with session_scope(app.state.obd2.sessionmaker) as session:
            await session.execute(
                text(
                    "INSERT INTO samples (device_id, seq, vehicle_id, ts, pid, value) "
                    "VALUES (3, :seq, :v, :ts, :pid, 1000)"
                ),
                [
                    {"seq": i * 10 + p, "v": vehicle_id, "ts": end + i * 50, "pid": pid}
                    for i in range(hz)
                    for p, pid in enumerate(PIDS)
                ],
            )
        await _recompute(app, vehicle_id, {end - end % 60_000})

    append = await _timed(one_more_second)
    return [
        {"measure": f"{label}: full recomputation", "value": round(full, 1), "unit": "ms"},
        {
            "measure": "one late sample mid-drive: recount its minutes",
            "value": round(late, 1),
            "unit": "ms",
            # The 2-hour drive's figure is the one judged (issue 7: under 1 s on Postgres).
            "target": Target("<", 1000) if seconds >= 7200 else None,
        },
        {
            "measure": "one more second live (80 rows): resumed trip",
            "value": round(append, 1),
            "unit": "ms",
        },
        {"measure": "distance of the drive", "value": round(float(trips[1]), 2), "unit": "km"},
    ]


async def _bench_list(app: FastAPI, count: int, repeats: int) -> list[dict[str, Any]]:
    state = app.state.obd2
    vehicle_id = await _vehicle(app, "bench@example.com")
    async with session_scope(state.sessionmaker) as session:
        rows = [
            {
                "vehicle_id": vehicle_id,
                "start_ts": T0 + n * 3_600_000,
                "end_ts": T0 + n * 3_600_000 + 1_200_000,
                "distance_km": 12.3,
                "distance_source": "speed",
                "moving_s": 1000.0,
                "idle_s": 200.0,
                "max_speed_kmh": 88.0,
                "max_rpm": 3200.0,
                "max_coolant_c": 92.0,
                "fuel_rate_l": 1.1,
                "air_g": None,
                "sample_count": 20_000,
                "track_points": 0,
                "state": "{}",
            }
            for n in range(count)
        ]
        for start in range(0, count, 2000):
            await session.execute(insert(Trip), rows[start : start + 2000])
    if state.engine.dialect.name == "postgresql":
        async with state.engine.begin() as connection:
            await connection.execute(text("ANALYZE trips"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        login = await client.post(
            "/api/v1/auth/login", json={"email": "bench@example.com", "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
        url = f"/api/v1/vehicles/{vehicle_id}/trips"
        first = await client.get(url, params={"limit": 50})
        assert first.status_code == 200, first.text
        assert len(first.json()) == 50
        middle_cursor = f"{T0 + (count // 2) * 3_600_000}_{count // 2}"

        async def sample(params: dict[str, Any]) -> list[float]:
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                response = await client.get(url, params=params)
                times.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200
            return sorted(times)

        first_page = await sample({"limit": 50})
        middle_page = await sample({"limit": 50, "cursor": middle_cursor})
    query_times = []
    async with state.sessionmaker() as session:
        repo = TripRepository(session)
        for _ in range(repeats):
            started = time.perf_counter()
            page = await repo.page(
                vehicle_id, start_from=None, start_to=None, before=None, limit=51
            )
            query_times.append((time.perf_counter() - started) * 1000)
            assert len(page) == 51
            session.expunge_all()
    label = f"trips list, {count} trips stored, 50 per page"
    return [
        {
            "measure": f"{label}: first page p50 (query)",
            "value": round(statistics.median(query_times), 2),
            "unit": "ms",
        },
        {
            "measure": f"{label}: first page p50 (HTTP)",
            "value": round(statistics.median(first_page), 2),
            "unit": "ms",
            "target": Target("<=", 20) if count >= 10_000 else None,
        },
        {
            "measure": f"{label}: first page p95 (HTTP)",
            "value": round(first_page[int(len(first_page) * 0.95) - 1], 2),
            "unit": "ms",
        },
        {
            "measure": f"{label}: page by cursor, middle p50 (HTTP)",
            "value": round(statistics.median(middle_page), 2),
            "unit": "ms",
        },
    ]


async def _run_backend(backend: str, short: bool) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        database = None
        if backend == "postgres":
            database = f"obd2_bench_{uuid.uuid4().hex[:12]}"
            await _admin(f'CREATE DATABASE "{database}"')
            url = PG_ADMIN_URL.rpartition("/")[0] + f"/{database}"
        else:
            url = f"sqlite:///{tmp}/bench.sqlite3"
        try:
            await asyncio.to_thread(upgrade_head, async_database_url(url))
            settings = Settings(
                DATABASE_URL=url,
                SESSION_SECRET="bench-" + "x" * 40,
                DATA_DIR=Path(tmp),
                EMBEDDED_WORKER=False,
            )
            app = create_app(settings)
            async with app.router.lifespan_context(app):
                recompute = await _bench_recompute(app, 600 if short else 7200)
                listing = await _bench_list(app, 1000 if short else 10_000, 20 if short else 200)
        finally:
            if database is not None:
                await _admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    return [{"backend": backend, **row} for row in recompute + listing]


def run(short: bool) -> list[Result]:
    """What bench/run.py calls: every figure on both backends."""
    results: list[Result] = []
    for backend in ("postgres", "sqlite"):
        for row in asyncio.run(_run_backend(backend, short)):
            figure = f"{row['backend']}: {row['measure']}"
            results.append(Result("trips", figure, row["value"], row["unit"], row.get("target")))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="a 10-minute drive, 1000 trips")
    args = parser.parse_args()
    results = run(args.short)
    width = max(len(r.figure) for r in results)
    print(f"{'figure':<{width}} {'value':>10} unit  target")
    for r in results:
        verdict = ""
        if r.target is not None:
            verdict = f"{r.target.op} {r.target.bound:g}: {'pass' if r.passed else 'MISS'}"
        print(f"{r.figure:<{width}} {r.value:>10} {r.unit:<4}  {verdict}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    rows = [r.as_json() for r in results]
    RESULTS.write_text(json.dumps({"short": args.short, "results": rows}, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
