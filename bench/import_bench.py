"""Import benchmark: `obd2-dashboard import` of a large CSV against HTTP ingest of the same rows.

A CSV of one row per second (`ts,RPM,SPEED`: 1,000,000 rows in the full run, 50,000 with
`--short`) is imported into one vehicle by `obd2-dashboard import` as an operator runs it
(PostgreSQL of its own, the process timed from start to summary, rollups and trips built). The
same rows then go to another vehicle over `POST /api/v1/ingest` from one client, in batches of
the wire's largest size, against `obd2-dashboard serve` (and its worker, so that its outbox is
drained as a live server's would be). Figures: rows per second of each, and their ratio.

Runs on demand only (`bench/run.py import`, or `.venv/bin/python bench/import_bench.py`),
never in the test suite.
"""

import argparse
import asyncio
import os
import subprocess
import tempfile
import time
from pathlib import Path

import orjson
from harness import VENV_BIN, LeanHttp, Result, log, make_fleet, scratch, serve, worker

from obd2_protocol import MAX_BATCH_SAMPLES

NAME = "import"
FULL_ROWS = 1_000_000
SHORT_ROWS = 50_000
START_MS = 1_700_000_000_000  # November 2023: history well in the past


def _row(i: int) -> tuple[int, float, float]:
    # A steady loop of town driving: the values matter less than their count.
    speed = float((i // 5) % 90)
    return START_MS + i * 1000, 800.0 + speed * 25, speed


def write_csv(path: Path, rows: int) -> None:
    with path.open("w") as out:
        out.write("ts,RPM,SPEED\n")
        for i in range(rows):
            ts, rpm, speed = _row(i)
            out.write(f"{ts},{rpm:g},{speed:g}\n")


def import_rows(env: dict[str, str], path: Path, vehicle: int) -> tuple[float, str]:
    started = time.monotonic()
    done = subprocess.run(
        [str(VENV_BIN / "obd2-dashboard"), "import", str(path), "--vehicle", str(vehicle)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"import failed: {done.stderr[-2000:]}")
    return seconds, done.stdout.strip().splitlines()[0]


async def ingest_rows(url: str, token: str, rows: int) -> float:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    per_batch = MAX_BATCH_SAMPLES // 2
    started = time.monotonic()
    async with LeanHttp(url) as http:
        for first in range(0, rows, per_batch):
            samples = []
            for i in range(first, min(rows, first + per_batch)):
                ts, rpm, speed = _row(i)
                samples += [
                    {"seq": i * 2, "ts": ts, "pid": "RPM", "value": rpm},
                    {"seq": i * 2 + 1, "ts": ts, "pid": "SPEED", "value": speed},
                ]
            status, body = await http.request(
                "POST", "/api/v1/ingest", orjson.dumps({"samples": samples}), headers
            )
            if status != 200:
                raise RuntimeError(f"ingest answered {status}: {body[:300]!r}")
    return time.monotonic() - started


def run(short: bool) -> list[Result]:
    rows = SHORT_ROWS if short else FULL_ROWS
    with scratch(NAME) as box, tempfile.TemporaryDirectory(prefix="obd2-bench-import-") as tmp:
        path = Path(tmp) / "rows.csv"
        log(f"writing a CSV of {rows} rows")
        write_csv(path, rows)
        fleet = asyncio.run(make_fleet(box, 2, 1))
        log("obd2-dashboard import")
        import_s, summary = import_rows(box.env(), path, fleet.vehicles[0])
        log(summary)
        log("the same rows over HTTP ingest")
        with serve(box) as server, worker(box):
            ingest_s = asyncio.run(ingest_rows(server.url, fleet.devices[1].token, rows))
    import_rate, ingest_rate = rows / import_s, rows / ingest_s
    note = f"{rows} rows, 2 samples a row"
    return [
        Result(NAME, "import rows/s (CLI, rollups and trips built)", import_rate, "rows/s",
               note=note),
        Result(NAME, "HTTP ingest rows/s (one client)", ingest_rate, "rows/s", note=note),
        Result(NAME, "import rate / ingest rate", import_rate / ingest_rate, "x", note=summary),
    ]  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--short", action="store_true", help=f"{SHORT_ROWS} rows")
    for result in run(parser.parse_args().short):
        print(f"{result.figure}: {result.value:,.2f} {result.unit} ({result.note})")
