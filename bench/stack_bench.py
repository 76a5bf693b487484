"""The whole stack: a soak at a steady 20 000 samples/s with 100 SSE viewers through nginx, and
ingest throughput with one API process against two behind nginx, in the same run.

The stack is the fault suite's harness (``tests/stack``, ``stack.harness.Stack``): a fresh
database on the machine's PostgreSQL, a redis-server of its own (so that its memory is the
stack's alone), two ``serve`` and two ``worker`` processes in production mode, and the shipped
nginx site in front of both API processes, over HTTPS. Clients run in processes of their own
and go through nginx, as browsers and agents do.

Soak: 100 devices (a vehicle each) post a batch of 100 samples every 0.5 s (20 000 samples/s
and 200 requests/s offered), each sample stamped with the time it was sent; 100 SSE viewers,
one per vehicle, read the live streams and resume with ``Last-Event-ID`` whenever a stream
breaks. After the warm-up, once a minute: the RSS of every process of the stack (API, workers,
nginx, Redis), the length of every Redis stream and the outbox's backlog. Per minute: the p99
of the live latency (the sample's send time to its arrival at a viewer, one machine clock) and
the samples answered 200. It ends by checking that nothing was lost: every acknowledged sample
is in the database, and every viewer got, once and in order, every sample of its vehicle sent
from a second after it connected.

Scale: 24 connections post batches of 500 as fast as they are answered, first with nginx's
upstream at one API process, then at two (nginx reloaded between), everything else the same.

Full mode: 150 s warm-up (longer than the 2 min Redis keeps of the live and work streams), a
10 min soak read every minute, 30 s per scale step. Short mode: 3 s, 20 s read every 10 s, 5 s.
"""

import asyncio
import contextlib
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Any

import uvloop
from harness import (
    CpuMeter,
    LeanHttp,
    Result,
    Target,
    client_config,
    client_ready,
    client_report,
    clients,
    log,
    rss_bytes,
)

from obd2_testkit.stack.harness import Device, Endpoint, SseViewer, Stack, StackConfig

NAME = "stack"
DEVICES = 100
BATCH = 100
INTERVAL_S = 0.5
OFFERED = DEVICES * BATCH / INTERVAL_S  # 20 000 samples/s
VIEWERS = 100
LOAD_PROCESSES = 2
VIEWER_PROCESSES = 2
SCALE_CONNECTIONS = 24
SCALE_BATCH = 500
PIDS = (
    *("RPM", "SPEED", "THROTTLE_POS", "ENGINE_LOAD", "COOLANT_TEMP"),
    *("INTAKE_TEMP", "MAF", "INTAKE_PRESSURE", "TIMING_ADVANCE", "FUEL_LEVEL"),
)
LATENCY_BINS = 10_001  # 1 ms bins up to 10 s; the last one holds everything later
QUIET_S = 5.0  # after the load, viewers read until nothing came for this long
DRAIN_MAX_S = 180.0
MIB = 1024 * 1024


def body(first_seq: int, count: int, ts: int) -> bytes:
    samples = ",".join(
        f'{{"seq":{first_seq + i},"ts":{ts},"pid":"{PIDS[i % len(PIDS)]}",'
        f'"value":{(first_seq + i) % 5000}}}'
        for i in range(count)
    )
    return b'{"samples":[' + samples.encode() + b"]}"


# -- the load: devices posting batches through nginx --------------------------------------------


async def _paced(config: dict[str, Any], go: dict[str, Any]) -> dict[str, Any]:
    """Each device posts ``BATCH`` samples every ``INTERVAL_S`` on one keep-alive connection.

    A request answered late delays the device's next one (it then goes at once, to catch up),
    so a server that cannot keep up shows as samples answered below the offered rate and as
    request times; nothing is sent after ``end``.
    """

    endpoint = Endpoint.of(config["url"], Path(config["cafile"]))
    devices = [Device(**d) for d in config["devices"]]
    start, end, soak_start, minute_s = go["start"], go["end"], go["soak_start"], go["minute_s"]
    answered: dict[int, int] = defaultdict(int)  # minute of the answer → samples
    sent: dict[int, int] = defaultdict(int)  # vehicle → samples acknowledged
    request_ms: dict[int, int] = defaultdict(int)  # time to the answer → requests
    errors: dict[str, int] = defaultdict(int)
    unsent = 0

    async def device(d: Device, offset: float) -> None:
        nonlocal unsent
        headers = {"Authorization": f"Bearer {d.token}", "Content-Type": "application/json"}
        seq, k = 0, 0
        http: LeanHttp | None = None
        while True:
            due = start + offset + k * INTERVAL_S
            if due >= end:
                break
            if time.time() >= end:
                unsent += int((end - due) // INTERVAL_S) + 1
                break
            k += 1
            await asyncio.sleep(max(0.0, due - time.time()))
            try:
                if http is None:
                    http = await LeanHttp(config["url"], endpoint.ssl).__aenter__()
                sent_at = time.time()
                payload = body(seq, BATCH, int(sent_at * 1000))
                status, _ = await http.request("POST", "/api/v1/ingest", payload, headers)
            except (OSError, ConnectionError, ValueError) as exc:
                errors[type(exc).__name__] += 1
                http = None
                continue
            now = time.time()
            request_ms[min(LATENCY_BINS - 1, int((now - sent_at) * 1000))] += 1
            if status != 200:
                errors[str(status)] += 1
                continue
            sent[d.vehicle_id] += BATCH
            answered[int((now - soak_start) // minute_s)] += BATCH
            seq += BATCH
        if http is not None:
            await http.__aexit__()

    spread = INTERVAL_S / len(devices)
    await asyncio.gather(*(device(d, i * spread) for i, d in enumerate(devices)))
    return {
        "answered": dict(answered),
        "sent": sent,
        "request_ms": dict(request_ms),
        "unsent": unsent,
        "errors": dict(errors),
    }


async def _closed(config: dict[str, Any], go: dict[str, Any]) -> dict[str, Any]:
    """Batches of ``SCALE_BATCH`` as fast as answered; counts what is answered in the window."""

    endpoint = Endpoint.of(config["url"], Path(config["cafile"]))
    devices = [Device(**d) for d in config["devices"]]
    measure_from, end = go["measure_from"], go["end"]
    counted = 0
    errors: dict[str, int] = defaultdict(int)
    acked_total = 0

    async def device(d: Device) -> None:
        nonlocal counted, acked_total
        headers = {"Authorization": f"Bearer {d.token}", "Content-Type": "application/json"}
        seq = config["first_seq"]
        async with LeanHttp(config["url"], endpoint.ssl) as http:
            while time.time() < end:
                payload = body(seq, SCALE_BATCH, int(time.time() * 1000))
                status, _ = await http.request("POST", "/api/v1/ingest", payload, headers)
                if status != 200:
                    errors[str(status)] += 1
                    continue
                seq += SCALE_BATCH
                acked_total += SCALE_BATCH
                if measure_from <= time.time() < end:
                    counted += SCALE_BATCH

    await asyncio.gather(*(device(d) for d in devices))
    return {"counted": counted, "acked": acked_total, "errors": dict(errors)}


# -- the viewers -------------------------------------------------------------------------------


async def _viewers(config: dict[str, Any]) -> dict[str, Any]:

    endpoint = Endpoint.of(config["url"], Path(config["cafile"]))
    histograms: dict[int, list[int]] = {}
    state: dict[int, dict[str, int]] = {}
    minute_s = 1.0
    soak_start = float("inf")

    def on_sample(vehicle_id: int, sample: dict[str, Any], received: float) -> None:
        mine = state[vehicle_id]
        seq = int(sample["seq"])
        if seq != mine["last"] + 1 and mine["last"] >= 0:
            mine["out_of_order" if seq <= mine["last"] else "gaps"] += 1
        mine["last"] = max(mine["last"], seq)
        mine["counted"] += 1
        if received >= soak_start:
            minute = int((received - soak_start) // minute_s)
            bins = histograms.setdefault(minute, [0] * LATENCY_BINS)
            bins[min(LATENCY_BINS - 1, max(0, int(received * 1000 - sample["ts"])))] += 1

    viewers = []
    for vehicle in config["vehicles"]:
        state[vehicle] = {"last": -1, "gaps": 0, "out_of_order": 0, "counted": 0}
        viewer = SseViewer(endpoint, vehicle, config["cookie"], keep_events=False)
        viewer.on_sample = on_sample
        viewers.append(viewer)
    tasks = [asyncio.create_task(v.run()) for v in viewers]
    await asyncio.wait_for(asyncio.gather(*(v.ready.wait() for v in viewers)), 120)
    go = await asyncio.to_thread(client_ready)
    soak_start, minute_s = go["soak_start"], go["minute_s"]
    await asyncio.sleep(max(0.0, go["end"] - time.time()))
    # Then until the streams have been quiet for a while: what is late still counts as late,
    # not as lost.
    quiet_since, seen = time.time(), -1
    while time.time() - quiet_since < QUIET_S and time.time() < go["end"] + DRAIN_MAX_S:
        total = sum(s["counted"] for s in state.values())
        if total != seen:
            quiet_since, seen = time.time(), total
        await asyncio.sleep(0.5)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        # Sparse: most of the 10 001 bins are empty.
        "histograms": {
            str(minute): {str(ms): n for ms, n in enumerate(bins) if n}
            for minute, bins in histograms.items()
        },
        "vehicles": {
            str(v.log.vehicle_id): {
                **state[v.log.vehicle_id],
                "connects": v.log.connects,
                "resets": len(v.log.resets),
                "failures": v.log.failures[-3:],
            }
            for v in viewers
        },
    }


def client_main(role: str) -> None:

    config = client_config()
    if role == "viewers":
        client_report(uvloop.run(_viewers(config)))
        return
    go = client_ready()
    run = _paced if role == "load" else _closed
    client_report(uvloop.run(run(config, go)))


# -- the run -------------------------------------------------------------------------------


def _split(items: list[Any], parts: int) -> list[list[Any]]:
    return [items[i::parts] for i in range(parts)]


def _percentile(bins: list[int], pct: float) -> float:
    total = sum(bins)
    if total == 0:
        return float("nan")
    rank, seen = pct / 100 * total, 0
    for ms, count in enumerate(bins):
        seen += count
        if seen >= rank:
            return float(ms)
    return float(len(bins) - 1)


def _p99(bins: list[int]) -> float:
    return _percentile(bins, 99)


def _merge(histograms: list[dict[str, dict[str, int]]]) -> dict[int, list[int]]:
    merged: dict[int, list[int]] = {}
    for one in histograms:
        for minute, bins in one.items():
            into = merged.setdefault(int(minute), [0] * LATENCY_BINS)
            for ms, count in bins.items():
                into[int(ms)] += count
    return merged


def _snapshot(stack: Stack) -> dict[str, Any]:
    rss = {}
    for name, pid in stack.server_pids().items():
        try:
            rss[name] = rss_bytes(pid)
        except (FileNotFoundError, RuntimeError):
            continue
    return {"rss": rss, "streams": stack.redis.stream_lengths(), "outbox": stack.outbox()}


def _soak(stack: Stack, short: bool) -> list[Result]:
    # The warm-up outlasts the 2 min that live and work streams keep, so that Redis has
    # reached its steady size when the soak's readings start.
    warmup_s, soak_s, minute_s = (3.0, 20.0, 10.0) if short else (150.0, 600.0, 60.0)
    fleet = stack.fleet(DEVICES)
    cookie = stack.sign_in(fleet.email)
    common = {"url": stack.url, "cafile": str(stack.site.cert)}
    viewer_configs = [
        {**common, "cookie": cookie, "vehicles": part}
        for part in _split(fleet.vehicles[:VIEWERS], VIEWER_PROCESSES)
    ]
    load_configs = [
        {**common, "devices": [asdict(d) for d in part]}
        for part in _split(fleet.devices, LOAD_PROCESSES)
    ]
    log(f"{VIEWERS} SSE viewers through nginx")
    with (
        clients(__file__, "viewers", viewer_configs) as viewers,
        clients(__file__, "load", load_configs) as loads,
    ):
        start = time.time() + 1.5  # a second after the last viewer connected
        soak_start = start + warmup_s
        end = soak_start + soak_s
        log(f"{OFFERED:,.0f} samples/s offered: {warmup_s:.0f} s warm-up, {soak_s:.0f} s soak")
        pids = list(stack.server_pids().values())
        timing = {"soak_start": soak_start, "minute_s": minute_s}
        for load in loads:
            load.go({**timing, "start": start, "end": end})
        for viewer in viewers:
            viewer.go({**timing, "end": end})
        time.sleep(max(0.0, soak_start - time.time()))
        cpu = CpuMeter(pids)
        cpu.start()
        snapshots = [_snapshot(stack)]
        for minute in range(1, int(soak_s // minute_s) + 1):
            time.sleep(max(0.0, soak_start + minute * minute_s - time.time()))
            snapshots.append(_snapshot(stack))
            log(f"{minute * minute_s:.0f} s: {snapshots[-1]['outbox']} batches in the outbox")
        cpu.stop()
        load_reports = [load.report(timeout=120) for load in loads]
        viewer_reports = [v.report(timeout=DRAIN_MAX_S + 120) for v in viewers]

    results: list[Result] = []
    unit = "minute" if minute_s == 60 else f"{minute_s:.0f} s"
    acked = sum(n for r in load_reports for n in r["sent"].values())
    in_soak = [
        sum(r["answered"].get(str(m), 0) for r in load_reports)
        for m in range(int(soak_s // minute_s))
    ]
    errors: dict[str, int] = defaultdict(int)
    for r in load_reports:
        for kind, count in r["errors"].items():
            errors[kind] += count
    unsent = sum(r["unsent"] for r in load_reports)
    # 503 is the API's answer to overload (no database connection free in time): the agent
    # retries. Anything else is a failure.
    failed = {kind: n for kind, n in errors.items() if kind != "503"}
    results.append(
        Result(
            NAME,
            "soak: ingest requests that failed",
            sum(failed.values()),
            "requests",
            Target("<=", 0),
            f"{failed or 'none'}; refused with 503 (overload): {errors.get('503', 0)}",
        )
    )
    results.append(
        Result(
            NAME,
            "soak: ingest answered 200",
            sum(in_soak) / soak_s,
            "samples/s",
            Target(">=", OFFERED * 0.98),
            f"{OFFERED:,.0f} offered; samples/s each {unit}: "
            f"{[round(n / minute_s) for n in in_soak]}; batches still due at the end "
            f"{unsent}; non-200 or failed requests: {dict(errors) or 'none'}",
        )
    )
    requests = _merge([{"0": r["request_ms"]} for r in load_reports]).get(0, [0] * LATENCY_BINS)
    results.append(
        Result(
            NAME,
            "soak: ingest request through nginx, p99",
            _p99(requests),
            "ms",
            note=f"p50 {_percentile(requests, 50):.0f} ms; {sum(requests):,} requests",
        )
    )
    # Latency per minute, and over the whole soak.
    merged = _merge([r["histograms"] for r in viewer_reports])
    minutes = sorted(m for m in merged if 0 <= m < soak_s // minute_s)
    for m in minutes:
        results.append(Result(NAME, f"soak: live p99, {unit} {m + 1}", _p99(merged[m]), "ms"))
    whole = [sum(merged[m][i] for m in minutes) for i in range(LATENCY_BINS)]
    results.append(
        Result(
            NAME,
            "soak: live p99, whole soak",
            _p99(whole),
            "ms",
            note=f"{sum(whole):,} deliveries; from the send of the sample to the viewer",
        )
    )
    # Memory and queues: the first reading (end of warm-up) against the last.
    first, last = snapshots[0], snapshots[-1]
    for name in sorted(first["rss"]):
        if name not in last["rss"]:
            continue
        before, after = first["rss"][name], last["rss"][name]
        readings = " → ".join(f"{s['rss'][name] / MIB:.0f}" for s in snapshots if name in s["rss"])
        results.append(
            Result(
                NAME,
                f"soak: RSS growth, {name}",
                (after - before) / before * 100,
                "%",
                Target("<", 10),
                f"MiB each {unit}: {readings}",
            )
        )
    streams = sorted({k for s in snapshots for k in s["streams"]})
    longest = {k: max(s["streams"].get(k, 0) for s in snapshots) for k in streams}
    live = [v for k, v in longest.items() if k.startswith("live:")]
    results.append(
        Result(
            NAME,
            "soak: longest live stream",
            max(live, default=0),
            "entries",
            Target("<=", 2_300),
            "each vehicle's stream is capped near 2 000 entries (MAXLEN ~)",
        )
    )
    outboxes = [s["outbox"] for s in snapshots]
    results.append(
        Result(
            NAME,
            "soak: outbox backlog at the end",
            outboxes[-1],
            "batches",
            Target("<=", 2 * OFFERED / BATCH),
            f"batches not yet rolled up, each {unit}: {outboxes} (target: 2 s of ingest)",
        )
    )
    results.append(
        Result(
            NAME,
            "soak: CPU of the stack's processes",
            cpu.seconds / soak_s,
            "cores",
            note="APIs, workers, nginx, Redis (PostgreSQL not counted)",
        )
    )
    # Nothing lost: storage, then each viewer against what was sent to its vehicle.
    stored = int(stack.db.fetch("SELECT count(*) FROM samples")[0][0])
    results.append(
        Result(
            NAME,
            "soak: acknowledged samples not stored",
            acked - stored,
            "samples",
            Target("<=", 0),
            f"{acked:,} acknowledged, {stored:,} stored",
        )
    )
    sent: dict[int, int] = defaultdict(int)
    for r in load_reports:
        for vehicle, count in r["sent"].items():
            sent[int(vehicle)] += count
    undelivered = disorder = reconnects = 0
    for r in viewer_reports:
        for vehicle, seen in r["vehicles"].items():
            # Every viewer was connected for a second before the first sample was sent.
            expected = sent[int(vehicle)]
            if seen["resets"] == 0:
                undelivered += max(0, expected - seen["counted"])
            disorder += seen["gaps"] + seen["out_of_order"]
            reconnects += seen["connects"] - 1
    results.append(
        Result(
            NAME,
            "soak: samples a viewer never got",
            undelivered,
            "samples",
            Target("<=", 0),
            f"streams reopened (Last-Event-ID) {reconnects} times; "
            f"{disorder} deliveries out of order or after a hole",
        )
    )
    results.append(
        Result(NAME, "soak: deliveries out of order or after a hole", disorder, "events",
               Target("<=", 0))
    )  # fmt: skip
    return results


def _scale_step(stack: Stack, devices: list[Device], first_seq: int, seconds: float) -> float:
    common = {"url": stack.url, "cafile": str(stack.site.cert), "first_seq": first_seq}
    configs = [
        {**common, "devices": [asdict(d) for d in part]} for part in _split(devices, LOAD_PROCESSES)
    ]
    warmup = 2.0
    with clients(__file__, "closed", configs) as loads:
        start = time.time() + 0.5
        go = {"measure_from": start + warmup, "end": start + warmup + seconds}
        for load in loads:
            load.go(go)
        reports = [load.report(timeout=seconds + 120) for load in loads]
    errors = sum(sum(r["errors"].values()) for r in reports)
    if errors:
        raise RuntimeError(f"scale step: {errors} failed requests")
    return float(sum(r["counted"] for r in reports)) / seconds


def _scale(stack: Stack, short: bool) -> list[Result]:
    seconds = 5.0 if short else 30.0
    fleet = stack.fleet(SCALE_CONNECTIONS)
    # The workers first finish what the soak left them, so that both steps start equal.
    with contextlib.suppress(AssertionError):
        stack.wait_derived(timeout=30 if short else 300)
    ports = [api.port for api in stack.apis]
    rates = {}
    for count in (1, 2):
        stack.site.set_upstreams(ports[:count])
        log(f"scale: nginx upstream of {count} API process(es), {seconds:.0f} s")
        rates[count] = _scale_step(stack, fleet.devices, count * 10**9, seconds)
    stack.site.set_upstreams(ports)
    note = f"{SCALE_CONNECTIONS} connections, batches of {SCALE_BATCH}, closed loop, through nginx"
    return [
        Result(NAME, "scale: ingest, 1 API process behind nginx", rates[1], "samples/s", note=note),
        Result(NAME, "scale: ingest, 2 API processes behind nginx", rates[2], "samples/s"),
        Result(NAME, "scale: 2 processes / 1", rates[2] / rates[1], "ratio"),
    ]


def run(short: bool) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="obd2-stack-bench-") as tmp:
        stack = Stack(Path(tmp), StackConfig(apis=2, workers=2, own_redis=True))
        log("starting the stack: PostgreSQL database, Redis, 2 API, 2 workers, nginx")
        stack.start()
        try:
            soak = _soak(stack, short)
            scale = _scale(stack, short)
        finally:
            stack.stop()
    return soak + scale


if __name__ == "__main__" and sys.argv[1:2] in (["viewers"], ["load"], ["closed"]):
    client_main(sys.argv[1])
