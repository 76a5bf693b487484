"""Ingest end to end: HTTP batches of 500, durable in Postgres, against a raw COPY of the same rows.

Several client processes keep batches in flight over keep-alive connections, one device per
connection; a sample counts once its batch's 200 has arrived (a 200 means committed). The same
rows, regenerated, are then COPYed into the emptied table in one ``copy_records_to_table``.
"""

import asyncio
import sys
import time
from dataclasses import asdict, dataclass

import httpx
from harness import (
    Device,
    Result,
    Scratch,
    Target,
    client_config,
    client_ready,
    client_report,
    clients,
    log,
    make_fleet,
    pg,
    scratch,
    serve,
)

NAME = "ingest"
BATCH = 500
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
T0_MS = 1_750_000_000_000
SAMPLE_PERIOD_MS = 10


# A sample's value depends on its place in the batch only, so that a client fills one template
# with seqs and timestamps instead of formatting 500 numbers per request.
VALUES = tuple((i * 7919 % 100_000) / 10 for i in range(BATCH))
_TEMPLATE = (
    '{"samples":['
    + ",".join(
        '{"seq":%d,"ts":%d,"pid":"' + PIDS[i % len(PIDS)] + '","value":' + repr(VALUES[i]) + "}"
        for i in range(BATCH)
    )
    + "]}"
)


def row(seq: int) -> tuple[int, str, float]:
    """(ts, pid, value) of a device's sample ``seq``: both the clients and COPY make rows so."""
    return T0_MS + seq * SAMPLE_PERIOD_MS, PIDS[seq % len(PIDS)], VALUES[seq % BATCH]


def batch_body(first_seq: int) -> bytes:
    """The JSON body of seqs ``first_seq`` … ``first_seq + 499`` (a multiple of 500)."""
    args = [0] * (2 * BATCH)
    args[0::2] = range(first_seq, first_seq + BATCH)
    args[1::2] = range(
        T0_MS + first_seq * SAMPLE_PERIOD_MS,
        T0_MS + (first_seq + BATCH) * SAMPLE_PERIOD_MS,
        SAMPLE_PERIOD_MS,
    )
    return (_TEMPLATE % tuple(args)).encode()


@dataclass(frozen=True, slots=True)
class ClientReport:
    # per device: batches acknowledged (seq 0 .. batches*BATCH-1 are stored)
    batches: dict[int, int]
    in_window: int
    errors: int


async def _drive(
    url: str, devices: list[Device], start: float, measure_from: float, end: float
) -> ClientReport:
    batches: dict[int, int] = {}
    counted = 0
    errors = 0
    limits = httpx.Limits(max_connections=len(devices), max_keepalive_connections=len(devices))
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def one(device: Device) -> None:
            nonlocal counted, errors
            headers = {
                "Authorization": f"Bearer {device.token}",
                "Content-Type": "application/json",
            }
            done = 0
            body = batch_body(0)
            await asyncio.sleep(max(0.0, start - time.monotonic()))
            while time.monotonic() < end:
                response = await client.post("/api/v1/ingest", content=body, headers=headers)
                if response.status_code != 200:
                    errors += 1
                    await asyncio.sleep(0.05)
                    continue
                done += 1
                if time.monotonic() >= measure_from and time.monotonic() < end:
                    counted += BATCH
                body = batch_body(done * BATCH)
            batches[device.id] = done

        await asyncio.gather(*(one(d) for d in devices))
    return ClientReport(batches, counted, errors)


def http_ingest(
    url: str, devices: list[Device], processes: int, warmup_s: float, measure_s: float
) -> list[ClientReport]:
    configs = [
        {"url": url, "devices": [asdict(d) for d in devices[i::processes]]}
        for i in range(processes)
    ]
    with clients(__file__, "client", configs) as running:
        start = time.monotonic() + 0.2
        measure_from = start + warmup_s
        end = measure_from + measure_s
        for client in running:
            client.go({"start": start, "measure_from": measure_from, "end": end})
        raw = [c.report(timeout=end - time.monotonic() + 60) for c in running]
    return [
        ClientReport({int(k): v for k, v in r["batches"].items()}, r["in_window"], r["errors"])
        for r in raw
    ]


async def raw_copy(
    box: Scratch, batches: dict[int, int], vehicle_of: dict[int, int]
) -> tuple[int, float]:
    records = [
        (device_id, seq, vehicle_of[device_id], *row(seq))
        for device_id, count in batches.items()
        for seq in range(count * BATCH)
    ]
    async with pg(box) as connection:
        await connection.execute("TRUNCATE samples, ingest_outbox")
        await connection.execute("CHECKPOINT")
        started = time.perf_counter()
        await connection.copy_records_to_table(
            "samples",
            records=records,
            columns=["device_id", "seq", "vehicle_id", "ts", "pid", "value"],
        )
        elapsed = time.perf_counter() - started
    return len(records), elapsed


def run(short: bool) -> list[Result]:
    warmup_s, measure_s = (1.0, 4.0) if short else (3.0, 15.0)
    processes, connections = 2, 16
    with scratch(NAME) as box:
        fleet = asyncio.run(make_fleet(box, vehicles=4, devices_per_vehicle=connections // 4))
        vehicle_of = {d.id: d.vehicle_id for d in fleet.devices}
        with serve(box) as server:
            log(f"HTTP ingest: {processes} processes, {connections} connections, {measure_s:g} s")
            reports = http_ingest(server.url, fleet.devices, processes, warmup_s, measure_s)
        batches = {k: v for r in reports for k, v in r.batches.items()}
        acked = sum(batches.values()) * BATCH
        errors = sum(r.errors for r in reports)

        async def stored() -> int:
            async with pg(box) as connection:
                return int(await connection.fetchval("SELECT count(*) FROM samples"))

        in_db = asyncio.run(stored())
        if in_db < acked:
            raise RuntimeError(f"{acked} samples acknowledged but only {in_db} stored")
        http_rate = sum(r.in_window for r in reports) / measure_s
        log(f"COPY of the same {acked} rows")
        copied, copy_s = asyncio.run(raw_copy(box, batches, vehicle_of))
    copy_rate = copied / copy_s
    note = f"{acked} samples acked, {errors} non-200"
    return [
        Result(
            NAME, "HTTP ingest, batches of 500", http_rate, "samples/s", Target(">=", 100_000), note
        ),
        Result(NAME, "raw COPY, same rows", copy_rate, "samples/s"),
        Result(NAME, "HTTP / raw COPY", http_rate / copy_rate, "ratio", Target(">=", 0.5)),
    ]


def client_main() -> None:
    import uvloop

    config = client_config()
    devices = [Device(**d) for d in config["devices"]]
    go = client_ready()
    report = uvloop.run(_drive(config["url"], devices, go["start"], go["measure_from"], go["end"]))
    client_report(asdict(report))


if __name__ == "__main__" and sys.argv[1:] == ["client"]:
    client_main()
