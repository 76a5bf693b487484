"""API memory: RSS of the serve process after 1 M ingested samples, and its growth over a soak.

One ``serve`` process (the default ``--workers 1``) takes 1 M samples in batches of 500 from
eight devices (the warm-up; short mode: 250 k), then a steady 10 000 samples/s for five
minutes (short mode: 30 s) while its resident set size is read from /proc every few seconds.
Growth is the last reading against the first one of the soak.
"""

import asyncio
import sys
import time
from dataclasses import asdict

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
    rss_bytes,
    scratch,
    serve,
)
from ingest_bench import BATCH, batch_body

NAME = "memory"
WARMUP_SAMPLES = 1_000_000
DEVICES = 8
SOAK_BATCHES_PER_S = 20  # 10 000 samples/s
MIB = 1024 * 1024


async def _load(
    url: str, devices: list[Device], first_batch: int, batches: int | None, rate: float, end: float
) -> dict[str, int]:
    """Each device sends ``batches`` batches as fast as answered, or one every 1/rate s."""
    sent = 0
    errors = 0

    async def one(device: Device, offset: float) -> None:
        nonlocal sent, errors
        headers = {"Authorization": f"Bearer {device.token}", "Content-Type": "application/json"}
        start = time.monotonic() + offset
        async with LeanHttp(url) as http:
            k = 0
            while (batches is None or k < batches) and time.monotonic() < end:
                if rate:
                    await asyncio.sleep(max(0.0, start + k / rate - time.monotonic()))
                body = batch_body((first_batch + k) * BATCH)
                status, _ = await http.request("POST", "/api/v1/ingest", body, headers)
                if status == 200:
                    sent += 1
                    k += 1
                else:
                    errors += 1
                    await asyncio.sleep(0.1)

    spread = 1 / rate / len(devices) if rate else 0.0
    await asyncio.gather(*(one(d, i * spread) for i, d in enumerate(devices)))
    return {"batches": sent, "errors": errors}


def client_main() -> None:

    config = client_config()
    devices = [Device(**d) for d in config["devices"]]
    go = client_ready()
    report = uvloop.run(
        _load(
            config["url"],
            devices,
            config["first_batch"],
            config["batches"],
            config["rate"],
            go["end"],
        )
    )
    client_report(report)


def _drive(
    url: str,
    devices: list[Device],
    first_batch: int,
    batches: int | None,
    rate: float,
    seconds: float,
    rss_of: int,
    every_s: float,
) -> tuple[dict[str, int], list[int]]:
    config = {
        "url": url,
        "devices": [asdict(d) for d in devices],
        "first_batch": first_batch,
        "batches": batches,
        "rate": rate,
    }
    readings = []
    with clients(__file__, "load", [config]) as running:
        end = time.monotonic() + seconds
        running[0].go({"end": end})
        process = running[0].process
        assert process is not None
        while process.poll() is None:
            readings.append(rss_bytes(rss_of))
            deadline = time.monotonic() + every_s
            while process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
        report = running[0].report(timeout=30)
    readings.append(rss_bytes(rss_of))
    return report, readings


def run(short: bool) -> list[Result]:
    soak_s = 30.0 if short else 300.0
    warmup = WARMUP_SAMPLES // 4 if short else WARMUP_SAMPLES
    with scratch(NAME) as box:
        fleet = asyncio.run(make_fleet(box, vehicles=4, devices_per_vehicle=DEVICES // 4))
        with serve(box) as server:
            started_rss = rss_bytes(server.pid)
            per_device = warmup // BATCH // DEVICES
            log(f"warm-up: {warmup:,} samples")
            warm, _ = _drive(server.url, fleet.devices, 0, per_device, 0.0, 600.0, server.pid, 5.0)
            if warm["batches"] != per_device * DEVICES:
                raise RuntimeError(f"warm-up stored {warm['batches']} batches, not all")
            after_warmup = rss_bytes(server.pid)
            rate = SOAK_BATCHES_PER_S / DEVICES
            log(f"soak: {SOAK_BATCHES_PER_S * BATCH:,} samples/s for {soak_s:.0f} s")
            soak, readings = _drive(
                server.url,
                fleet.devices,
                per_device,
                None,
                rate,
                soak_s,
                server.pid,
                soak_s / 30,
            )
    first, last = readings[0], readings[-1]
    growth = (last - first) / first * 100
    note = (
        f"RSS at start {started_rss / MIB:.0f} MiB; soak readings {first / MIB:.0f} … "
        f"max {max(readings) / MIB:.0f} … {last / MIB:.0f} MiB; "
        f"{soak['batches'] * BATCH:,} soak samples, {soak['errors']} non-200"
    )
    return [
        Result(NAME, f"RSS after {warmup / 1e6:g} M samples", after_warmup / MIB, "MiB"),
        Result(NAME, f"RSS growth over a {soak_s:.0f} s soak", growth, "%", Target("<", 10), note),
        Result(NAME, "soak ingest rate", soak["batches"] * BATCH / soak_s, "samples/s"),
    ]


if __name__ == "__main__" and sys.argv[1:] == ["load"]:
    client_main()
