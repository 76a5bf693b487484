"""Web UI figures: production bundle size (gzipped, every file of apps/web/dist), first render of
the live page on localhost, and frame times while 8 PIDs arrive at 20 updates/s each.

Runs a real `obd2-dashboard serve` on the embedded defaults (SQLite, in-process broker) with a
seeded account and drives Debian's chromium through Playwright.

    .venv/bin/python bench/web_bench.py [--runs 15] [--smooth-seconds 10]
"""

import argparse
import asyncio
import gzip
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

from obd2_dashboard.auth.service import create_user
from obd2_dashboard.devices.service import create_device_for
from obd2_dashboard.models import Vehicle
from obd2_dashboard.ops.commands import migrated_session, prepare_embedded_storage
from obd2_dashboard.ops.migrations import upgrade_head
from obd2_dashboard.settings import Settings
from obd2_testkit.commands import DASHBOARD_CLI
from obd2_testkit.ports import free_port

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "apps" / "web" / "dist"
RESULTS = ROOT / "bench" / "results"
CLI = DASHBOARD_CLI
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
EMAIL = "bench@example.com"
PASSWORD = "bench password 123"
BUNDLE_LIMIT_KB = 150.0
FIRST_RENDER_LIMIT_MS = 1000.0
PIDS = (
    "RPM",
    "SPEED",
    "COOLANT_TEMP",
    "THROTTLE_POS",
    "ENGINE_LOAD",
    "FUEL_LEVEL",
    "ELM_VOLTAGE",
    "INTAKE_TEMP",
)


def bundle_sizes() -> dict[str, tuple[int, int]]:
    if not (DIST / "index.html").is_file():
        sys.exit("apps/web/dist is not built: run `make web`")
    sizes = {}
    for path in sorted(DIST.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            sizes[str(path.relative_to(DIST))] = (len(data), len(gzip.compress(data, 9)))
    return sizes


async def seed() -> tuple[int, str]:

    async with migrated_session(Settings()) as session:
        user = await create_user(session, EMAIL, PASSWORD)
        vehicle = Vehicle(owner_id=user.id, name="Bench car")
        session.add(vehicle)
        await session.flush()
        created = await create_device_for(session, vehicle, "bench agent")
        return vehicle.id, created.token


class Feeder(threading.Thread):
    """Every PID at `rate_hz`, one batch per tick, for at most `limit_s`."""

    def __init__(self, url: str, token: str, rate_hz: float, limit_s: float) -> None:
        super().__init__(daemon=True)
        self.url, self.token, self.period, self.limit_s = url, token, 1 / rate_hz, limit_s
        self.stop = threading.Event()
        self.seq = 0
        self.sent = 0

    def run(self) -> None:
        started = time.monotonic()
        with httpx.Client(base_url=self.url, timeout=10) as client:
            next_at = time.monotonic()
            while not self.stop.is_set() and time.monotonic() - started < self.limit_s:
                now_ms = int(time.time() * 1000)
                t = time.monotonic() - started
                samples = []
                for i, pid in enumerate(PIDS):
                    self.seq += 1
                    value = 50 + 40 * math.sin(t + i)
                    samples.append(
                        {"seq": self.seq, "ts": now_ms, "pid": pid, "value": round(value, 2)}
                    )
                response = client.post(
                    "/api/v1/ingest",
                    json={"samples": samples},
                    headers={"Authorization": f"Bearer {self.token}"},
                )
                if response.status_code == 200:
                    self.sent += len(samples)
                next_at += self.period
                self.stop.wait(max(0.0, next_at - time.monotonic()))


FRAME_PROBE = """() => new Promise((resolve) => {
  const gaps = []; let last = performance.now(); const end = last + DURATION;
  function frame(now) { gaps.push(now - last); last = now;
    if (now < end) requestAnimationFrame(frame); else resolve(gaps); }
  requestAnimationFrame(frame);
})"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--smooth-seconds", type=float, default=10.0)
    args = parser.parse_args()

    sizes = bundle_sizes()
    total_raw = sum(r for r, _ in sizes.values())
    total_gz = sum(g for _, g in sizes.values())

    tmp = Path(tempfile.mkdtemp(prefix="web-bench-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "PATH": os.environ["PATH"],
        "DATA_DIR": str(tmp / "var"),
        "SESSION_SECRET": "bench-secret-" + "x" * 40,
        "WEB_DIST": str(DIST),
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)

    settings = Settings()
    prepare_embedded_storage(settings)
    upgrade_head(settings.database_url)
    vehicle_id, token = asyncio.run(seed())
    log = (tmp / "serve.log").open("wb")
    server = subprocess.Popen(
        [CLI, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    first_render: list[float] = []
    gaps: list[float] = []
    feeder_rate = 0.0
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                sys.exit(f"the API did not start; see {tmp / 'serve.log'}")
            time.sleep(0.1)

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=url)
            login = context.request.post(
                f"{url}/api/v1/auth/login", data={"email": EMAIL, "password": PASSWORD}
            )
            assert login.status == 200, login.text()

            # First render: navigation start to the first gauge painted with a value.
            feeder = Feeder(url, token, rate_hz=10, limit_s=600)
            feeder.start()
            time.sleep(1.5)
            for run in range(args.runs + 1):
                page = context.new_page()
                page.goto(f"/vehicles/{vehicle_id}")
                page.wait_for_function(
                    "() => performance.getEntriesByName('obd2:live-first-render').length > 0",
                    timeout=10_000,
                )
                ms = page.evaluate(
                    "() => performance.getEntriesByName('obd2:live-first-render')[0].startTime"
                )
                if run > 0:  # the first run warms the server's caches and the browser's
                    first_render.append(float(ms))
                page.close()
            feeder.stop.set()
            feeder.join()

            # Smoothness: 8 PIDs at 20 updates/s each while the live page runs.
            page = context.new_page()
            page.goto(f"/vehicles/{vehicle_id}")
            page.wait_for_selector('.gauge[data-pid="RPM"]:not([hidden])')
            fast = Feeder(url, token, rate_hz=20, limit_s=args.smooth_seconds + 5)
            fast.start()
            time.sleep(1)
            gaps = page.evaluate(FRAME_PROBE.replace("DURATION", str(args.smooth_seconds * 1000)))
            fast.stop.set()
            fast.join()
            feeder_rate = fast.sent / len(PIDS) / (args.smooth_seconds + 1)
            browser.close()
    finally:
        server.terminate()
        server.wait(15)
        log.close()

    frames = gaps[1:]
    long_frames = [g for g in frames if g > 50]
    figures = {
        "bundle_files": {name: {"bytes": r, "gzip_bytes": g} for name, (r, g) in sizes.items()},
        "bundle_bytes": total_raw,
        "bundle_gzip_bytes": total_gz,
        "bundle_gzip_kb": round(total_gz / 1024, 1),
        "first_render_ms_median": round(statistics.median(first_render), 1),
        "first_render_ms_p95": round(percentile(first_render, 0.95), 1),
        "first_render_ms_max": round(max(first_render), 1),
        "first_render_runs": len(first_render),
        "feed_updates_per_s_per_pid": round(feeder_rate, 1),
        "frames": len(frames),
        "frame_ms_median": round(statistics.median(frames), 1),
        "frame_ms_p99": round(percentile(frames, 0.99), 1),
        "frames_over_50ms": len(long_frames),
    }
    print(f"{'file':<40} {'bytes':>10} {'gzip':>10}")
    for name, (raw, gz) in sizes.items():
        print(f"{name:<40} {raw:>10,} {gz:>10,}")
    kb = figures["bundle_gzip_kb"]
    print(f"{'total':<40} {total_raw:>10,} {total_gz:>10,}  ({kb} KB gzipped, limit 150)")
    print(
        f"first render of the live page: median {figures['first_render_ms_median']} ms, "
        f"p95 {figures['first_render_ms_p95']} ms, max {figures['first_render_ms_max']} ms "
        f"over {len(first_render)} loads (limit {FIRST_RENDER_LIMIT_MS:g} ms)"
    )
    print(
        f"live page at {figures['feed_updates_per_s_per_pid']} updates/s per PID"
        f" x {len(PIDS)} PIDs: {len(frames)} frames, median {figures['frame_ms_median']} ms,"
        f" p99 {figures['frame_ms_p99']} ms, {len(long_frames)} over 50 ms"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "web.json").write_text(json.dumps(figures, indent=2) + "\n")
    ok = (
        total_gz / 1024 <= BUNDLE_LIMIT_KB
        and figures["first_render_ms_p95"] <= FIRST_RENDER_LIMIT_MS
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
