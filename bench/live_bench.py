"""Live latency: from the 200 of a one-sample ingest to the event at each SSE viewer.

10 vehicles each ingest 20 samples/s, one sample per request (as a live agent does); 200 SSE
viewers, 20 per vehicle, read the vehicles' streams. Viewers and the ingest client run in
processes of their own and stamp times with the system-wide monotonic clock, so a latency is
the viewer's receive time minus the ingest client's time of the 200. A negative latency means
the event reached the viewer before the 200 reached the agent (fan-out follows the commit,
before the response is written). An event a viewer never got counts with the latency it had
reached when the run ended, so that the percentiles are lower bounds rather than flattering.
"""

import asyncio
import sys
import time
from collections import defaultdict
from dataclasses import asdict
from typing import Any

import orjson
import uvloop
from harness import (
    Device,
    LeanHttp,
    Result,
    Target,
    client_config,
    client_ready,
    client_report,
    clients,
    log,
    make_fleet,
    median,
    percentile,
    scratch,
    serve,
    sign_in,
)

from obd2_testkit.stack.harness import read_body

NAME = "live"
VEHICLES = 10
VIEWERS = 200
RATE_HZ = 20
VIEWER_PROCESSES = 2
SERVE_WORKERS = 2
VIEWER_GRACE_S = 3.0  # viewers read this long after the last ingest, to drain a backlog


# -- viewers ----------------------------------------------------------------------------------


async def _open_stream(
    url: str, vehicle_id: int, cookie: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            (
                f"GET /api/v1/streams/vehicles/{vehicle_id} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Accept: text/event-stream\r\nCookie: {cookie}\r\n\r\n"
            ).encode()
        )
        status = await reader.readline()
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
    except BaseException:
        writer.close()  # not left for the garbage collector to find open
        raise
    if b" 200 " not in status:
        writer.close()
        raise RuntimeError(f"stream of vehicle {vehicle_id}: {status!r}")
    # The writer goes back too: a StreamWriter that is garbage-collected closes its connection.
    return reader, writer


async def _view(
    url: str,
    vehicle_id: int,
    cookie: str,
    connected: asyncio.Event,
    go: asyncio.Event,
    received: list[tuple[int, int, float]],
    end_box: list[float],
    dropped: list[int],
) -> None:
    for attempt in range(20):
        try:
            reader, writer = await _open_stream(url, vehicle_id, cookie)
            break
        except (RuntimeError, OSError) as exc:
            print(f"viewer of vehicle {vehicle_id}: {exc}; retrying", file=sys.stderr)
            await asyncio.sleep(0.2 * (attempt + 1))
    else:
        raise RuntimeError(f"viewer of vehicle {vehicle_id} could not connect")
    pending = b""
    first = True
    try:
        async for chunk in read_body(reader, chunked=True):
            now = time.monotonic()
            if first:
                first = False
                connected.set()
            pending += chunk
            while b"\n\n" in pending:
                block, pending = pending.split(b"\n\n", 1)
                if b"event: sample" not in block:
                    continue
                for line in block.split(b"\n"):
                    if line.startswith(b"data: "):
                        received.append((vehicle_id, orjson.loads(line[6:])["seq"], now))
            if go.is_set() and now >= end_box[0]:
                writer.close()
                return
    except (OSError, asyncio.IncompleteReadError) as exc:
        print(f"viewer of vehicle {vehicle_id}: {exc!r}", file=sys.stderr)
    # The stream ended early (the server cuts off a viewer that reads too slowly; a browser
    # would reconnect with Last-Event-ID) or broke.
    dropped.append(vehicle_id)


async def _viewers(url: str, cookie: str, vehicles: list[int], count: int) -> dict[str, Any]:
    received: list[tuple[int, int, float]] = []
    dropped: list[int] = []
    go = asyncio.Event()
    end_box = [float("inf")]
    connected = [asyncio.Event() for _ in range(count)]
    tasks = [
        asyncio.create_task(
            _view(
                url,
                vehicles[i % len(vehicles)],
                cookie,
                connected[i],
                go,
                received,
                end_box,
                dropped,
            )
        )
        for i in range(count)
    ]
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in connected)), 120)
    message = await asyncio.to_thread(client_ready)
    end_box[0] = message["end"]
    go.set()
    await asyncio.sleep(max(0.0, message["end"] - time.monotonic()))
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"received": received, "dropped": len(dropped)}


# -- the live agents --------------------------------------------------------------------------


async def _agents(url: str, devices: list[Device]) -> dict[str, Any]:
    message = await asyncio.to_thread(client_ready)
    start, end = message["start"], message["end"]
    acked: list[tuple[int, int, float, float]] = []
    errors = 0

    async def agent(device: Device) -> None:
        nonlocal errors
        headers = {"Authorization": f"Bearer {device.token}", "Content-Type": "application/json"}
        async with LeanHttp(url) as http:
            seq = 0
            while True:
                due = start + seq / RATE_HZ
                if due >= end:
                    return
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                ts = int(time.time() * 1000)
                body = b'{"samples":[{"seq":%d,"ts":%d,"pid":"RPM","value":%d}]}' % (
                    seq,
                    ts,
                    800 + seq % 4000,
                )
                sent = time.monotonic()
                status, _ = await http.request("POST", "/api/v1/ingest", body, headers)
                if status == 200:
                    acked.append((device.vehicle_id, seq, sent, time.monotonic()))
                else:
                    errors += 1
                seq += 1

    await asyncio.gather(*(agent(d) for d in devices))
    return {"acked": acked, "errors": errors}


def client_main(role: str) -> None:

    config = client_config()
    if role == "viewers":
        report = uvloop.run(
            _viewers(config["url"], config["cookie"], config["vehicles"], config["count"])
        )
    else:
        devices = [Device(**d) for d in config["devices"]]
        report = uvloop.run(_agents(config["url"], devices))
    client_report(report)


# -- the benchmark ----------------------------------------------------------------------------


def run(short: bool) -> list[Result]:
    warmup_s, measure_s = (2.0, 6.0) if short else (5.0, 20.0)
    with scratch(NAME) as box:
        fleet = asyncio.run(make_fleet(box, vehicles=VEHICLES, devices_per_vehicle=1))
        with serve(box, "--workers", str(SERVE_WORKERS)) as server:
            cookies = asyncio.run(sign_in(server.url, fleet.email))
            cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
            per_process = VIEWERS // VIEWER_PROCESSES
            viewer_configs = [
                {
                    "url": server.url,
                    "cookie": cookie,
                    "vehicles": fleet.vehicles,
                    "count": per_process,
                }
                for _ in range(VIEWER_PROCESSES)
            ]
            log(f"{VIEWERS} SSE viewers over {VEHICLES} vehicles")
            with clients(__file__, "viewers", viewer_configs) as viewers:
                agent_config = {"url": server.url, "devices": [asdict(d) for d in fleet.devices]}
                with clients(__file__, "agents", [agent_config]) as agents:
                    start = time.monotonic() + 0.5
                    end = start + warmup_s + measure_s
                    log(f"{VEHICLES} agents at {RATE_HZ} samples/s each for {end - start:.0f} s")
                    agents[0].go({"start": start, "end": end})
                    for viewer in viewers:
                        viewer.go({"end": end + VIEWER_GRACE_S})
                    agent_report = agents[0].report(timeout=end - time.monotonic() + 60)
                    viewer_reports = [
                        v.report(timeout=end - time.monotonic() + 60) for v in viewers
                    ]
    measure_from = start + warmup_s
    acked_at = {(v, s): t for v, s, _, t in agent_report["acked"]}
    sent_at = {(v, s): t for v, s, t, _ in agent_report["acked"]}
    latencies_ms: list[float] = []
    from_send_ms: list[float] = []
    per_sample: dict[tuple[int, int], int] = defaultdict(int)
    for report in viewer_reports:
        for vehicle, seq, t in report["received"]:
            sent = acked_at.get((vehicle, seq))
            if sent is not None and sent >= measure_from:
                latencies_ms.append((t - sent) * 1000)
                from_send_ms.append((t - sent_at[(vehicle, seq)]) * 1000)
                per_sample[(vehicle, seq)] += 1
    measured = [key for key, t in acked_at.items() if t >= measure_from]
    expected = len(measured) * (VIEWERS // VEHICLES)
    if not latencies_ms:
        raise RuntimeError("no live event was received")
    delivered = sum(per_sample.values()) / max(1, expected)
    # An event a viewer never got counts as late as the run allowed (a lower bound), so that a
    # backlog shows in the percentiles instead of vanishing from them.
    viewers_end = end + VIEWER_GRACE_S
    per_vehicle_viewers = VIEWERS // VEHICLES
    for key in measured:
        missing = per_vehicle_viewers - per_sample.get(key, 0)
        latencies_ms += [(viewers_end - acked_at[key]) * 1000] * missing
        from_send_ms += [(viewers_end - sent_at[key]) * 1000] * missing
    note = (
        f"{sum(per_sample.values())} deliveries of {len(measured)} samples to 20 viewers each, "
        f"{agent_report['errors']} ingest errors, min {min(latencies_ms):.1f} ms, "
        f"{sum(r['dropped'] for r in viewer_reports)} streams cut off by the server"
    )
    return [
        Result(
            NAME, "ingest 200 → SSE viewer, p50", median(latencies_ms), "ms", Target("<=", 10), note
        ),
        Result(
            NAME,
            "ingest 200 → SSE viewer, p99",
            percentile(latencies_ms, 99),
            "ms",
            Target("<=", 50),
        ),
        Result(NAME, "ingest request sent → SSE viewer, p50", median(from_send_ms), "ms"),
        Result(NAME, "ingest request sent → SSE viewer, p99", percentile(from_send_ms, 99), "ms"),
        Result(NAME, "events delivered / expected", delivered, "ratio"),
    ]


if __name__ == "__main__" and sys.argv[1:2] in (["viewers"], ["agents"]):
    client_main(sys.argv[1])
