# SPDX-License-Identifier: GPL-2.0-or-later
"""Bridge Agent benchmark: samples/s of the agent against a plain python-OBD loop, agent CPU per
1000 samples, spool write throughput.

Both readers run in the same run against the same adapter with a per-request delay like a real
ELM327's (50 ms): our simulated car, and ELM327-emulator (whose multi-PID answers cost one delay
per PID, so it measures the single-PID path only). Prints a table and writes
bench/results/bridge_bench.json.

    .venv/bin/python bench/bridge_bench.py [--seconds 8] [--delay-ms 50]
"""

import argparse
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import obd

from obd2_bridge.spool import Spool

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PIDS = ["RPM", "SPEED", "THROTTLE_POS", "ENGINE_LOAD", "COOLANT_TEMP", "INTAKE_TEMP"]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def start_simulator(delay_ms: float) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [
            str(BIN / "obd2-bridge"),
            "simulate",
            "--port",
            str(port),
            "--delay-ms",
            str(delay_ms),
            "--no-engine-off",
        ],
        stdout=subprocess.DEVNULL,
    )
    wait_port(port)
    return process, f"socket://127.0.0.1:{port}"


def start_emulator(delay_ms: float, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "elm"), "-n", str(port), "-b", str(workdir / "elm.out")],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=workdir,
    )
    wait_port(port)
    assert process.stdin is not None
    process.stdin.write(f"delay {delay_ms / 1000}\n".encode())
    process.stdin.flush()
    return process, f"socket://127.0.0.1:{port}"


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdin is not None:
        process.stdin.close()


def plain_python_obd(url: str, seconds: float) -> dict[str, float]:
    """What a hand-written logger does: python-OBD, one query per PID, in a loop."""
    connection = obd.OBD(url, baudrate=38400)
    commands = [obd.commands[name] for name in PIDS]
    samples = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        for command in commands:
            if not connection.query(command).is_null():
                samples += 1
    elapsed = time.monotonic() - start
    connection.close()
    return {"samples": samples, "seconds": elapsed, "samples_per_s": samples / elapsed}


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def _spooled(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            return int(db.execute("SELECT count(*) FROM samples").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def agent(url: str, seconds: float, workdir: Path, *, multi: bool) -> dict[str, float]:
    """The real agent process; no server is reachable, so every sample stays in its spool."""
    run = workdir / f"agent-{'multi' if multi else 'single'}-{time.monotonic_ns()}"
    run.mkdir()
    config = run / "bridge.toml"
    config.write_text("voltage_interval_s = 3600.0\nupload_backoff_max_s = 5.0\n")
    spool = run / "spool.sqlite3"
    args = [
        str(BIN / "obd2-bridge"),
        "run",
        "--config",
        str(config),
        "--adapter",
        url,
        "--api",
        f"http://127.0.0.1:{free_port()}",
        "--token",
        "bench",
        "--spool",
        str(spool),
        "--pids",
        ",".join(PIDS),
        "--slow-pids",
        "",
    ]
    if not multi:
        args.append("--no-multi-pid")
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while _spooled(spool) == 0:  # connected and reading: the window starts here
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the agent never read a sample")
            time.sleep(0.05)
        first, cpu0, t0 = _spooled(spool), _cpu_s(process.pid), time.monotonic()
        time.sleep(seconds)
        last, cpu1, t1 = _spooled(spool), _cpu_s(process.pid), time.monotonic()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(20)
    samples = last - first
    return {
        "samples": samples,
        "seconds": t1 - t0,
        "samples_per_s": samples / (t1 - t0),
        "cpu_s": cpu1 - cpu0,
        "cpu_ms_per_1000_samples": (cpu1 - cpu0) * 1000 / max(1, samples) * 1000,
    }


def spool_throughput(workdir: Path) -> dict[str, float]:
    results: dict[str, float] = {}
    for batch in (6, 100):
        spool = Spool(workdir / f"throughput-{batch}.sqlite3", max_bytes=10**10)
        rows = [(1_800_000_000_000, "RPM", 812.5, False)] * batch
        total, start = 0, time.perf_counter()
        while time.perf_counter() - start < 2.0:
            spool.append(rows)
            total += batch
        results[f"rows_per_s_batch_{batch}"] = total / (time.perf_counter() - start)
        spool.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--delay-ms", type=float, default=50.0)
    args = parser.parse_args()
    results: dict[str, object] = {"delay_ms": args.delay_ms, "seconds": args.seconds, "pids": PIDS}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        sim, url = start_simulator(args.delay_ms)
        try:
            results["simulator"] = {
                "python_obd_loop": plain_python_obd(url, args.seconds),
                "agent_multi_pid": agent(url, args.seconds, workdir, multi=True),
                "agent_single_pid": agent(url, args.seconds, workdir, multi=False),
            }
        finally:
            stop(sim)
        emu, url = start_emulator(args.delay_ms, workdir)
        try:
            results["emulator"] = {
                "python_obd_loop": plain_python_obd(url, args.seconds),
                "agent_single_pid": agent(url, args.seconds, workdir, multi=False),
            }
        finally:
            stop(emu)
        results["spool"] = spool_throughput(workdir)

    print(
        f"\nBridge Agent, {args.delay_ms:g} ms per request, {len(PIDS)} PIDs, "
        f"{args.seconds:g} s each"
    )
    head = ("adapter", "reader", "samples/s", "vs python-OBD", "CPU ms/1000")
    print(f"{head[0]:<10} {head[1]:<18} {head[2]:>10} {head[3]:>14} {head[4]:>12}")
    for adapter in ("simulator", "emulator"):
        runs = results[adapter]
        assert isinstance(runs, dict)
        base = runs["python_obd_loop"]["samples_per_s"]
        for name, run in runs.items():
            cpu = run.get("cpu_ms_per_1000_samples")
            ratio = run["samples_per_s"] / base
            run["ratio_vs_python_obd"] = ratio
            cpu_text = f"{cpu:.0f}" if cpu is not None else "-"
            rate = run["samples_per_s"]
            print(f"{adapter:<10} {name:<18} {rate:>10.1f} {ratio:>13.2f}x {cpu_text:>12}")
    spool = results["spool"]
    assert isinstance(spool, dict)
    for key, value in spool.items():
        print(f"spool {key}: {value:,.0f}")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bridge_bench.json").write_text(json.dumps(results, indent=2))
    print(f"written {out / 'bridge_bench.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
