"""Demo benchmark: how long `obd2-dashboard demo` takes to store its month of history and serve.

Runs `obd2-dashboard demo` as `make demo` does (embedded SQLite under a fresh directory, the
environment cleared), twice in the same directory:

- first start: migrations, the 30 days of the demo car's drives stored through the ingest path
  (rollups, trips and trouble codes built), then serving. Figures: the seeding time the demo
  reports, and the time from the process starting to `/healthz` answering. Target: both under
  30 s on this machine.
- second start (full run only): the same month again, which must store nothing twice; the
  seeding time of a start that finds the history already there.

Prints the table through `bench/run.py demo`, or alone: `.venv/bin/python bench/demo_bench.py`.
"""

import argparse
import contextlib
import os
import re
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from harness import VENV_BIN, Result, Target, free_port, log

NAME = "demo"
SEEDED = re.compile(
    r"demo: (\d+) drives of the last \d+ days, (\d+) samples stored \((\d+) stored before\) "
    r"in ([\d.]+) s"
)


@dataclass(frozen=True, slots=True)
class Start:
    drives: int
    stored: int
    duplicates: int
    seeding_s: float
    serving_s: float


def _start(directory: Path) -> Start:
    """One `obd2-dashboard demo` from its start until it serves; stopped with Ctrl-C after."""
    port = free_port()
    log_path = directory / f"demo-{port}.log"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/")}
    started = time.monotonic()
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            [str(VENV_BIN / "obd2-dashboard"), "demo", "--port", str(port)],
            env=env,
            cwd=directory,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = started + 300
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"demo exited early:\n{log_path.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"demo not serving after 300 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.05)
        serving = time.monotonic() - started
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    match = SEEDED.search(log_path.read_text())
    if match is None:
        raise RuntimeError(f"demo did not report its history:\n{log_path.read_text()[-3000:]}")
    drives, stored, duplicates, seconds = match.groups()
    return Start(int(drives), int(stored), int(duplicates), float(seconds), serving)


def run(short: bool) -> list[Result]:
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="obd2-bench-demo-") as tmp:
        directory = Path(tmp)
        log("first start: 30 days of history into a fresh embedded database")
        first = _start(directory)
        note = f"{first.drives} drives, {first.stored} samples"
        results += [
            Result(
                NAME, "history seeding, first start", first.seeding_s, "s", Target("<", 30), note
            ),
            Result(
                NAME, "first start until it serves", first.serving_s, "s", Target("<", 30), note
            ),
            Result(NAME, "samples stored, first start", first.stored, "samples"),
            Result(NAME, "drives stored, first start", first.drives, "drives"),
        ]
        if not short:
            log("second start: the same month, already stored")
            again = _start(directory)
            results += [
                Result(
                    NAME,
                    "history seeding, second start",
                    again.seeding_s,
                    "s",
                    Target("<", 30),
                    f"{again.stored} new, {again.duplicates} stored before",
                ),
                Result(NAME, "second start until it serves", again.serving_s, "s"),
            ]
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--short", action="store_true", help="the first start only")
    for result in run(parser.parse_args().short):
        print(f"{result.figure}: {result.value:g} {result.unit} {result.note}")
