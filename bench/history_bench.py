"""History: one PID of one vehicle over 24 h and over 30 days, 1 000 points, on 10 M samples.

The samples are seeded straight into Postgres (a COPY into ``samples`` with its secondary
indexes built after it, then the per-minute and quarter-hour rollups with an INSERT … SELECT
each, then VACUUM ANALYZE, as a long-running install has them);
queries go through the HTTP API with a signed-in browser session, each over a window at a
random place in the seeded month, timed at the client.
"""

import asyncio
import random
import time
from collections.abc import AsyncIterator

import httpx
from harness import (
    Result,
    Scratch,
    Target,
    log,
    make_fleet,
    median,
    percentile,
    pg,
    scratch,
    serve,
    sign_in,
)

NAME = "history"
PIDS = (
    "RPM",
    "SPEED",
    "COOLANT_TEMP",
    "THROTTLE_POS",
    "ENGINE_LOAD",
    "MAF",
    "INTAKE_TEMP",
    "FUEL_LEVEL",
    "TIMING_ADVANCE",
    "ELM_VOLTAGE",
)
DAY_MS = 86_400_000
SPAN_MS = 35 * DAY_MS
END_MS = 1_760_000_000_000
START_MS = END_MS - SPAN_MS
CHUNK = 50_000


async def _records(
    device_id: int, vehicle_id: int, total: int
) -> AsyncIterator[tuple[object, ...]]:
    # Rows in time order, the PIDs interleaved, as an agent's batches arrive.
    step = SPAN_MS / total
    for first in range(0, total, CHUNK):
        for seq in range(first, min(total, first + CHUNK)):
            pid = PIDS[seq % len(PIDS)]
            yield (device_id, seq, vehicle_id, START_MS + int(seq * step), pid, float(seq % 6000))
        await asyncio.sleep(0)


async def seed(box: Scratch, device_id: int, vehicle_id: int, total: int) -> dict[str, float]:
    took = {}
    async with pg(box) as connection:
        # A bulk load: the secondary indexes are built once after the COPY (as a restore does)
        # rather than grown row by row; the primary key stays, as it guards the COPY.
        indexes = await connection.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'samples' "
            "AND indexname <> 'pk_samples'"
        )
        for index in indexes:
            await connection.execute(f'DROP INDEX "{index["indexname"]}"')
        await connection.execute("SET maintenance_work_mem = '256MB'")
        await connection.execute("SET work_mem = '256MB'")
        started = time.monotonic()
        await connection.copy_records_to_table(
            "samples",
            records=_records(device_id, vehicle_id, total),
            columns=["device_id", "seq", "vehicle_id", "ts", "pid", "value"],
        )
        took["copy_s"] = time.monotonic() - started
        started = time.monotonic()
        for index in indexes:
            await connection.execute(index["indexdef"])
        took["index_s"] = time.monotonic() - started
        started = time.monotonic()
        await connection.execute(
            "INSERT INTO sample_rollups_1m (vehicle_id, pid, bucket_ts, count, min, max, avg) "
            "SELECT vehicle_id, pid, ts - ts % 60000, count(*), min(value), max(value), "
            "avg(value) FROM samples GROUP BY vehicle_id, pid, ts - ts % 60000"
        )
        await connection.execute(
            "INSERT INTO sample_rollups_15m (vehicle_id, pid, bucket_ts, count, min, max, avg) "
            "SELECT vehicle_id, pid, bucket_ts - bucket_ts % 900000, sum(count), min(min), "
            "max(max), sum(avg * count) / sum(count) FROM sample_rollups_1m "
            "GROUP BY vehicle_id, pid, bucket_ts - bucket_ts % 900000"
        )
        took["rollups_s"] = time.monotonic() - started
        started = time.monotonic()
        await connection.execute("VACUUM ANALYZE samples")
        await connection.execute("VACUUM ANALYZE sample_rollups_1m")
        await connection.execute("VACUUM ANALYZE sample_rollups_15m")
        took["vacuum_s"] = time.monotonic() - started
    return took


async def timed_queries(
    url: str, cookies: dict[str, str], vehicle_id: int, window_ms: int, count: int
) -> list[float]:
    rng = random.Random(window_ms)
    timings = []
    async with httpx.AsyncClient(base_url=url, cookies=cookies, timeout=30) as client:
        for i in range(count + 3):  # the first three warm the connection and caches
            start = rng.randrange(START_MS, END_MS - window_ms)
            params: dict[str, str | int] = {
                "pid": rng.choice(PIDS),
                "from": start,
                "to": start + window_ms,
                "max_points": 1000,
            }
            began = time.perf_counter()
            response = await client.get(f"/api/v1/vehicles/{vehicle_id}/samples", params=params)
            elapsed = (time.perf_counter() - began) * 1000
            response.raise_for_status()
            points = response.json()["points"]
            if not 0 < len(points) <= 1000:
                raise RuntimeError(f"{len(points)} points for a {window_ms} ms window")
            if i >= 3:
                timings.append(elapsed)
    return timings


def run(short: bool) -> list[Result]:
    total = 1_000_000 if short else 10_000_000
    count = 20 if short else 60
    with scratch(NAME) as box:
        fleet = asyncio.run(make_fleet(box, vehicles=1, devices_per_vehicle=1))
        device = fleet.devices[0]
        log(f"seeding {total:,} samples by COPY, then rollups")
        took = asyncio.run(seed(box, device.id, device.vehicle_id, total))
        log(", ".join(f"{k} {v:.1f}" for k, v in took.items()))
        with serve(box) as server:
            cookies = asyncio.run(sign_in(server.url, fleet.email))
            figures = {}
            for label, window in (("1 h", 3_600_000), ("24 h", DAY_MS), ("30 days", 30 * DAY_MS)):
                figures[label] = asyncio.run(
                    timed_queries(server.url, cookies, device.vehicle_id, window, count)
                )
    note = f"{total:,} samples, {count} queries per window"
    return [
        Result(
            NAME, "24 h, 1000 points, p50", median(figures["24 h"]), "ms", Target("<=", 50), note
        ),
        Result(NAME, "24 h, 1000 points, p99", percentile(figures["24 h"], 99), "ms"),
        Result(
            NAME, "30 days, 1000 points, p50", median(figures["30 days"]), "ms", Target("<=", 100)
        ),
        Result(NAME, "30 days, 1000 points, p99", percentile(figures["30 days"], 99), "ms"),
        Result(NAME, "1 h from raw rows, 1000 points, p50", median(figures["1 h"]), "ms"),
        Result(NAME, "seed: COPY rate", total / took["copy_s"], "samples/s"),
    ]
