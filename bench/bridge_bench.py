# SPDX-License-Identifier: GPL-2.0-or-later
"""Bridge Agent benchmark: samples/s of the agent against a plain python-OBD loop, agent CPU per
1000 samples, spool write throughput; the adapter's limits of issue 16; the first seconds of a trip.

Both readers run in the same run against the same adapter with a per-request delay like a real
ELM327's (50 ms): our simulated car, and ELM327-emulator (whose multi-PID answers cost one delay
per PID, so it measures the single-PID path only).

Adapter limits: the agent alone against a K-line-like car (ISO 9141-2, 150 ms per request) and a
CAN car (30 ms), single and multi-PID, with and without response-count hints, with and without
ATST tuning; the simulated ELM waits its ATST time (200 ms unless the agent tunes it) for more
ECUs when a request carries no count, as a real one does (``--no-count-wait``). Engine start:
the time from the engine starting to the first RPM sample spooled with the adapter powered all
along (the CAN bus wakes up, and the battery reads 13.0 V running, under the 13.2 V charging
threshold); and from the adapter powering up with the car (it was off, the agent running) to
the first RPM sample.

Prints tables and writes bench/results/bridge_bench.json.

    .venv/bin/python bench/bridge_bench.py [--seconds 3] [--delay-ms 50] [--only limits,start]
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
from collections.abc import Callable
from pathlib import Path

import obd

from obd2_bridge.simulator import DriveCycle, ElmSimulator, SimulatedCar, SimulatorThread
from obd2_bridge.spool import Spool
from obd2_testkit.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PIDS = ["RPM", "SPEED", "THROTTLE_POS", "ENGINE_LOAD", "COOLANT_TEMP", "INTAKE_TEMP"]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def start_simulator(delay_ms: float, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
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
            *extra,
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


def agent(
    url: str,
    seconds: float,
    workdir: Path,
    *,
    multi: bool,
    hints: bool = True,
    tuning: bool = True,
    pids: list[str] = PIDS,
    slow_pids: str = "",
) -> dict[str, float]:
    """The real agent process; no server is reachable, so every sample stays in its spool."""
    args, spool = _agent_args(
        workdir,
        url,
        f"agent-{'multi' if multi else 'single'}",
        f"response_count_hints = {'true' if hints else 'false'}\n"
        f"tune_adapter_timing = {'true' if tuning else 'false'}\n",
    )
    args += ["--pids", ",".join(pids), "--slow-pids", slow_pids]
    if not multi:
        args.append("--no-multi-pid")
    started = time.monotonic()
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while _spooled(spool) == 0:  # connected and reading: the window starts here
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the agent never read a sample")
            time.sleep(0.05)
        first_sample_s = time.monotonic() - started
        # The first moments learn the response counts; the window starts after them.
        time.sleep(0.5)
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
        "agent_start_to_first_sample_s": first_sample_s,
    }


def adapter_limits(seconds: float, workdir: Path) -> dict[str, object]:
    """samples/s for a K-line-like and a CAN car: single/multi-PID, hints and ATST tuning on/off."""
    results: dict[str, object] = {}
    cars = (("kline_150ms", 150.0, ("--protocol", "3")), ("can_30ms", 30.0, ()))
    for car, delay_ms, extra in cars:
        sim, url = start_simulator(delay_ms, *extra, "--no-count-wait")
        try:
            # python-OBD speaks multi-PID only on CAN: a K-line car is read one PID a request.
            for multi in (False, True) if car.startswith("can") else (False,):
                for hints in (True, False):
                    for tuning in (True, False):
                        name = "_".join(
                            (
                                car,
                                "multi" if multi else "single",
                                "hints" if hints else "no_hints",
                                "atst" if tuning else "no_atst",
                            )
                        )
                        results[name] = agent(
                            url, seconds, workdir, multi=multi, hints=hints, tuning=tuning
                        )
            # The default PID set with slow PIDs at 1 Hz, one PID a request: the slow PIDs' rate.
            results[f"{car}_single_default_pids"] = slow_pid_rates(url, seconds, workdir)
        finally:
            stop(sim)
    return results


def slow_pid_rates(url: str, seconds: float, workdir: Path) -> dict[str, float]:
    """Per-PID rates of the default PID set (four fast, five slow at 1 Hz) one PID a request."""
    fast = ["RPM", "SPEED", "THROTTLE_POS", "ENGINE_LOAD"]
    slow = ["COOLANT_TEMP", "INTAKE_TEMP", "FUEL_LEVEL", "MAF", "INTAKE_PRESSURE"]
    run = agent(url, seconds, workdir, multi=False, pids=fast, slow_pids=",".join(slow))
    spool = sorted(workdir.glob("agent-single-*/spool.sqlite3"))[-1]
    with sqlite3.connect(f"file:{spool}?mode=ro", uri=True, timeout=5) as db:
        rows = db.execute("SELECT pid, count(*), min(ts), max(ts) FROM samples GROUP BY pid")
        for pid, count, first, last in rows:
            if count > 1 and last > first:
                run[f"{'slow' if pid in slow else 'fast'}_{pid}_hz"] = (count - 1) / (
                    (last - first) / 1000
                )
    return run


def _agent_args(workdir: Path, url: str, name: str, settings: str) -> tuple[list[str], Path]:
    run = workdir / f"{name}-{time.monotonic_ns()}"
    run.mkdir()
    config = run / "bridge.toml"
    config.write_text("voltage_interval_s = 3600.0\nupload_backoff_max_s = 5.0\n" + settings)
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
    ]
    return args, spool


def engine_start(workdir: Path, restarts: int = 2) -> dict[str, float]:
    """From the engine starting to the first RPM sample spooled, the adapter powered all along.

    The engine-off watch runs at its default pace; the hourly RPM probe never comes into it.
    """
    cycle = DriveCycle(
        idle_s=6.0, accelerate_s=0, cruise_s=0, brake_s=0, stop_s=0, engine_off_s=8.0
    )
    car = SimulatedCar(cycle, charging_v=13.0)
    times: list[float] = []
    with SimulatorThread(ElmSimulator(car, request_delay_s=0.03)) as sim:
        args, spool = _agent_args(
            workdir,
            sim.url,
            "engine-start",
            "engine_off_after_s = 2.0\nheartbeat_s = 3600.0\nengine_probe_s = 3600.0\n",
        )
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(restarts):
                _wait(lambda: not car.state().engine_on, 60)
                _wait(lambda: car.state().engine_on, 60)
                times.append(_first_rpm_delay(spool))
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(20)
    return {
        "restarts": len(times),
        "engine_start_to_first_rpm_s_mean": sum(times) / len(times),
        "engine_start_to_first_rpm_s_max": max(times),
    }


def adapter_powered_up(workdir: Path, off_s: float = 10.0) -> dict[str, float]:
    """From the adapter powering up with the car (off while the agent ran) to the first RPM."""
    car = SimulatedCar(DriveCycle(engine_off_s=0.0))
    with SimulatorThread(ElmSimulator(car, request_delay_s=0.03)) as sim:
        sim.drop_connections(refuse_for_s=off_s)  # nothing at the port
        powered_at = time.monotonic() + off_s
        args, spool = _agent_args(workdir, sim.url, "powered-up", "")
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait(lambda: time.monotonic() >= powered_at, off_s + 5)
            delay = _first_rpm_delay(spool)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(20)
    return {
        "adapter_off_s": off_s,
        "attempts_while_off": float(sim.server.refused),
        "adapter_power_up_to_first_rpm_s": delay,
    }


def _wait(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        time.sleep(0.01)


def _first_rpm_delay(spool: Path) -> float:
    """Seconds from now (the engine just started) to the first RPM sample spooled after it."""
    started_ms = time.time() * 1000
    _wait(lambda: _first_rpm_after(spool, started_ms) is not None, 60)
    first = _first_rpm_after(spool, started_ms)
    assert first is not None
    return (first - started_ms) / 1000


def _first_rpm_after(spool: Path, after_ms: float) -> int | None:
    if not spool.exists():
        return None
    try:
        with sqlite3.connect(f"file:{spool}?mode=ro", uri=True, timeout=5) as db:
            row = db.execute(
                "SELECT min(ts) FROM samples WHERE pid = 'RPM' AND value > 0 AND ts >= ?",
                (int(after_ms),),
            ).fetchone()
    except sqlite3.OperationalError:
        return None
    return int(row[0]) if row and row[0] is not None else None


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
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--delay-ms", type=float, default=50.0)
    parser.add_argument(
        "--only", default="", help="comma-separated parts: readers, limits, start (default all)"
    )
    args = parser.parse_args()
    parts = set(args.only.split(",")) if args.only else {"readers", "limits", "start"}
    results: dict[str, object] = {"delay_ms": args.delay_ms, "seconds": args.seconds, "pids": PIDS}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if "limits" in parts:
            limits = adapter_limits(args.seconds, workdir)
            results["adapter_limits"] = limits
            print("\nAdapter limits (the ELM waits its ATST time for more ECUs without a count)")
            for name, run in limits.items():
                assert isinstance(run, dict)
                rates = " ".join(f"{k}={v:.2f}" for k, v in run.items() if k.endswith("_hz"))
                print(f"{name:<38} {run['samples_per_s']:>8.1f} samples/s {rates}")
        if "start" in parts:
            start = engine_start(workdir)
            results["engine_start"] = start
            print(
                "\nEngine start to first RPM sample (adapter stayed powered): "
                + ", ".join(f"{k}={v:.2f}" for k, v in start.items())
            )
            powered = adapter_powered_up(workdir)
            results["adapter_powered_up"] = powered
            print(
                "Adapter powered up with the car to first RPM sample: "
                + ", ".join(f"{k}={v:.2f}" for k, v in powered.items())
            )
        if "readers" not in parts:
            _write(results)
            return 0
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
    _write(results)
    return 0


def _write(results: dict[str, object]) -> None:
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bridge_bench.json").write_text(json.dumps(results, indent=2))
    print(f"written {out / 'bridge_bench.json'}")


if __name__ == "__main__":
    raise SystemExit(main())
