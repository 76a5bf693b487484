# SPDX-License-Identifier: GPL-2.0-or-later
"""Helpers and fixtures of the agent's tests: the agent itself, ELM327-emulator, our simulated car,
and a stand-in for the dashboard API (``bridge_standin.py``) on loopback ports picked by the OS."""

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from bridge_standin import StandInServer, running_standin

from obd2_bridge.simulator import DriveCycle, ElmSimulator, SimulatedCar, SimulatorThread
from obd2_testkit.ports import free_port

__all__ = ["free_port"]

TOKEN = "device-token-for-tests"
BIN = Path(sys.executable).parent


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def server() -> Iterator[StandInServer]:
    with running_standin(StandInServer(tokens={TOKEN: 1})) as running:
        yield running


@pytest.fixture
def simulator() -> Iterator[SimulatorThread]:
    car = SimulatedCar(DriveCycle(engine_off_s=0.0))
    car.set_dtcs(["P0143"], ["P0420"], ["U0100"])
    with SimulatorThread(ElmSimulator(car)) as sim:
        yield sim


@pytest.fixture
def make_simulator() -> Iterator[Callable[..., SimulatorThread]]:
    """A simulated car behind an ELM that misbehaves as asked (``ElmSimulator``'s options)."""
    running: list[SimulatorThread] = []

    def make(
        cycle: DriveCycle | None = None, charging_v: float = 14.1, **elm: Any
    ) -> SimulatorThread:
        car = SimulatedCar(cycle or DriveCycle(engine_off_s=0.0), charging_v=charging_v)
        sim = SimulatorThread(ElmSimulator(car, **elm)).start()
        running.append(sim)
        return sim

    yield make
    for sim in running:
        sim.stop()


@dataclass
class Emulator:
    url: str
    process: "subprocess.Popen[bytes]"

    def command(self, line: str) -> None:
        """Type a command at the emulator's prompt (scenario, delay, …)."""
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    port = free_port()
    # Its stdin is a pipe so a test can script it; it reads commands from there in batch mode.
    process = subprocess.Popen(
        [str(BIN / "elm"), "-n", str(port), "-b", str(tmp_path / "elm-batch.out")],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    try:
        wait_until(lambda: _accepts(port), 20, "ELM327-emulator to listen")
        yield Emulator(f"socket://127.0.0.1:{port}", process)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        assert process.stdin is not None
        process.stdin.close()


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


FAST_TEST_CONFIG = {
    "voltage_interval_s": 1.0,
    "status_interval_s": 0.5,
    "upload_backoff_min_s": 0.2,
    "upload_backoff_max_s": 1.0,
    "websocket_retry_s": 1.5,
    "reconnect_min_s": 0.3,
    "reconnect_max_s": 1.0,
    "ack_timeout_s": 5.0,
    "adapter_timeout_s": 2.0,
    "engine_off_after_s": 30.0,
}


@dataclass
class Agent:
    spool: Path
    args: list[str]
    log: Path
    process: "subprocess.Popen[bytes] | None" = None

    def start(self) -> "Agent":
        log_fd = self._log_file()
        try:
            self.process = subprocess.Popen(
                self.args,
                stdout=subprocess.DEVNULL,
                stderr=log_fd,
                env={**os.environ, "OBD2_BRIDGE_CONFIG": "/nonexistent"},
            )
        finally:
            os.close(log_fd)
        return self

    def _log_file(self) -> int:
        return os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return int(self.process.returncode)

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def backlog(self) -> int:
        if not self.spool.exists():
            return 0
        with sqlite3.connect(f"file:{self.spool}?mode=ro", uri=True, timeout=10) as db:
            return int(db.execute("SELECT count(*) FROM samples").fetchone()[0])

    def high_water_mark(self) -> int:
        with sqlite3.connect(f"file:{self.spool}?mode=ro", uri=True, timeout=10) as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'seq_hwm'").fetchone()
            return int(row[0])

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def make_agent(tmp_path: Path) -> Iterator[Callable[..., Agent]]:
    agents: list[Agent] = []

    def make(adapter: str, api: str, *extra: str, **settings: object) -> Agent:
        config = tmp_path / f"agent-{len(agents)}.toml"
        values = {**FAST_TEST_CONFIG, **settings}
        config.write_text("\n".join(f"{k} = {_toml(v)}" for k, v in values.items()) + "\n")
        spool = tmp_path / "spool.sqlite3"
        args = [
            str(BIN / "obd2-bridge"),
            "run",
            "--config",
            str(config),
            "--adapter",
            adapter,
            "--api",
            api,
            "--token",
            TOKEN,
            "--spool",
            str(spool),
            *extra,
        ]
        agent = Agent(spool=spool, args=args, log=tmp_path / "agent.log")
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        if agent.process is not None:
            agent.stop()


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)


# ---- what a test checks: the status reported, samples neither lost nor doubled ------------------
def api(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def assert_contiguous(seqs: list[int], last: int) -> None:
    assert seqs, "the server holds no sample"
    assert len(seqs) == len(set(seqs))
    missing = sorted(set(range(seqs[0], last + 1)) - set(seqs))
    assert not missing, f"{len(missing)} seqs never arrived, first {missing[:5]}"
    assert seqs[-1] == last


def drain(agent: Agent, simulator: SimulatorThread, server: StandInServer) -> int:
    """Stop the car producing samples, wait until the spool is empty; returns the last seq."""
    elm = simulator.server.elm
    asked = elm.requests
    elm.silence_ecu(120)
    # The cycle in progress is spooled when it ends, and a cycle makes at most one request per
    # PID (nine): once the adapter has had more requests than that since the silence began,
    # that cycle is over and nothing more will be spooled.
    wait_until(lambda: elm.requests > asked + 2 * 9, 60, "a whole cycle after the silence")
    wait_until(lambda: agent.backlog() == 0, 60, "the spool to drain")
    last = agent.high_water_mark()
    wait_until(lambda: server.seqs()[-1:] == [last], 30, "the last sample on the server")
    return last


def states(server: StandInServer, since: int = 0) -> list[str]:
    return [f["adapter_state"] for f in server.frames_of("status")[since:]]


def recovered(server: StandInServer, since: int, after_ms: int) -> bool:
    if "connected" not in states(server, since):
        return False
    with server.lock:
        return any(s.ts > after_ms and s.pid == "RPM" for s in server.samples.values())
