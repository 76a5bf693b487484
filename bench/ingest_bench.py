"""Ingest end to end: HTTP batches of 500, durable in Postgres, against a raw COPY of the same rows.

Several client processes keep batches in flight over keep-alive connections (a lean HTTP/1.1
client: httpx costs the shared cores more CPU per request than the server does), one device per
connection; a sample counts once its batch's 200 has arrived (a 200 means committed). The same
rows, regenerated, are then COPYed into the emptied table in one ``copy_records_to_table``.
"""

import asyncio
import os
import sys
import time
from dataclasses import asdict, dataclass

import httpx
import uvloop
from harness import (
    CpuMeter,
    Device,
    LeanHttp,
    Result,
    Scratch,
    Target,
    backend_pids,
    client_config,
    client_ready,
    client_report,
    clients,
    log,
    make_fleet,
    pg,
    process_tree,
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
# One API process per core, as the systemd unit runs it on this machine.
SERVE_WORKERS = int(os.environ.get("OBD2_BENCH_INGEST_WORKERS", "2"))


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
    batches: dict[int, int]  # per device: batches acknowledged, so seqs 0 … 500·n-1 are stored
    in_window: int  # samples whose 200 arrived inside the measurement window
    errors: int
    cpu_s: float


async def _drive(
    url: str, devices: list[Device], start: float, measure_from: float, end: float
) -> ClientReport:
    batches: dict[int, int] = {}
    counted = 0
    errors = 0
    cpu_before = time.process_time()

    async def one(device: Device) -> None:
        nonlocal counted, errors
        headers = {"Authorization": f"Bearer {device.token}", "Content-Type": "application/json"}
        done = 0
        body = batch_body(0)
        async with LeanHttp(url) as http:
            await asyncio.sleep(max(0.0, start - time.monotonic()))
            while time.monotonic() < end:
                status, _ = await http.request("POST", "/api/v1/ingest", body, headers)
                if status != 200:
                    errors += 1
                    await asyncio.sleep(0.05)
                    continue
                done += 1
                if measure_from <= time.monotonic() < end:
                    counted += BATCH
                body = batch_body(done * BATCH)
        batches[device.id] = done

    await asyncio.gather(*(one(d) for d in devices))
    return ClientReport(batches, counted, errors, time.process_time() - cpu_before)


@dataclass(frozen=True, slots=True)
class HttpRun:
    reports: list[ClientReport]
    server_cpu_s: float  # API processes, inside the window
    db_cpu_s: float  # this database's Postgres backends, inside the window

    @property
    def in_window(self) -> int:
        return sum(r.in_window for r in self.reports)


def http_ingest(
    box: Scratch,
    server_pid: int,
    devices: list[Device],
    url: str,
    processes: int,
    warmup_s: float,
    measure_s: float,
) -> HttpRun:
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
        time.sleep(max(0.0, measure_from - time.monotonic()))
        server = CpuMeter(process_tree(server_pid))
        database = CpuMeter(asyncio.run(backend_pids(box)))
        server.start()
        database.start()
        time.sleep(max(0.0, end - time.monotonic()))
        server.stop()
        database.stop()
        raw = [c.report(timeout=end - time.monotonic() + 60) for c in running]
    reports = [
        ClientReport(
            {int(k): v for k, v in r["batches"].items()}, r["in_window"], r["errors"], r["cpu_s"]
        )
        for r in raw
    ]
    return HttpRun(reports, server.seconds, database.seconds)


@dataclass(frozen=True, slots=True)
class CopyRun:
    rows: int
    seconds: float
    db_cpu_s: float


async def raw_copy(box: Scratch, batches: dict[int, int], vehicle_of: dict[int, int]) -> CopyRun:
    records = [
        (device_id, seq, vehicle_of[device_id], *row(seq))
        for device_id, count in batches.items()
        for seq in range(count * BATCH)
    ]
    async with pg(box) as connection:
        await connection.execute("TRUNCATE samples, ingest_outbox")
        await connection.execute("CHECKPOINT")
        backend = CpuMeter([int(await connection.fetchval("SELECT pg_backend_pid()"))])
        backend.start()
        started = time.perf_counter()
        await connection.copy_records_to_table(
            "samples",
            records=records,
            columns=["device_id", "seq", "vehicle_id", "ts", "pid", "value"],
        )
        elapsed = time.perf_counter() - started
        backend.stop()
    return CopyRun(len(records), elapsed, backend.seconds)


def batches_per_transaction(metrics: str) -> float:
    total = count = 0.0
    for line in metrics.splitlines():
        name, _, value = line.partition(" ")
        if name == "obd2_ingest_group_batches_sum":
            total += float(value)
        elif name == "obd2_ingest_group_batches_count":
            count += float(value)
    return total / max(1.0, count)


def run(short: bool) -> list[Result]:
    warmup_s, measure_s = (1.0, 4.0) if short else (3.0, 15.0)
    processes, connections = 2, 12
    with scratch(NAME) as box:
        fleet = asyncio.run(make_fleet(box, vehicles=4, devices_per_vehicle=connections // 4))
        vehicle_of = {d.id: d.vehicle_id for d in fleet.devices}
        with serve(box, "--workers", str(SERVE_WORKERS)) as server:
            log(f"HTTP ingest: {processes} processes, {connections} connections, {measure_s:g} s")
            http = http_ingest(
                box, server.pid, fleet.devices, server.url, processes, warmup_s, measure_s
            )
            group = batches_per_transaction(httpx.get(f"{server.url}/metrics", timeout=10).text)
        batches = {k: v for r in http.reports for k, v in r.batches.items()}
        acked = sum(batches.values()) * BATCH
        errors = sum(r.errors for r in http.reports)

        async def stored() -> int:
            async with pg(box) as connection:
                return int(await connection.fetchval("SELECT count(*) FROM samples"))

        in_db = asyncio.run(stored())
        if in_db < acked:
            raise RuntimeError(f"{acked} samples acknowledged but only {in_db} stored")
        log(f"COPY of the same {acked} rows")
        copy = asyncio.run(raw_copy(box, batches, vehicle_of))
    http_rate = http.in_window / measure_s
    copy_rate = copy.rows / copy.seconds
    per_k = 1000 / max(1, http.in_window)
    client_cpu = sum(r.cpu_s for r in http.reports) * 1000 / max(1, acked)
    note = f"{acked} samples acknowledged and found stored, {errors} non-200 answers"
    return [
        Result(
            NAME, "HTTP ingest, batches of 500", http_rate, "samples/s", Target(">=", 100_000), note
        ),
        Result(NAME, "raw COPY, same rows", copy_rate, "samples/s"),
        Result(NAME, "batches per ingest transaction (group commit), mean", group, "batches"),
        Result(NAME, "HTTP / raw COPY", http_rate / copy_rate, "ratio", Target(">=", 0.5)),
        Result(NAME, "API CPU per 1000 samples", http.server_cpu_s * per_k * 1000, "ms"),
        Result(NAME, "Postgres CPU per 1000 samples, HTTP", http.db_cpu_s * per_k * 1000, "ms"),
        Result(NAME, "Postgres CPU per 1000 samples, COPY", copy.db_cpu_s / copy.rows * 1e6, "ms"),
        Result(NAME, "load client CPU per 1000 samples", client_cpu * 1000, "ms"),
    ]


def client_main() -> None:

    config = client_config()
    devices = [Device(**d) for d in config["devices"]]
    go = client_ready()
    report = uvloop.run(_drive(config["url"], devices, go["start"], go["measure_from"], go["end"]))
    client_report(asdict(report))


if __name__ == "__main__" and sys.argv[1:] == ["client"]:
    client_main()
