"""Real server processes for fault tests: `obd2-dashboard serve`/`worker` and a Redis of our own."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

CLI = str(Path(sys.executable).with_name("obd2-dashboard"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Proc:
    args: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> "Proc":
        handle = self.log.open("ab")
        self.popen = subprocess.Popen(
            self.args, env=self.env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
        handle.close()
        return self

    def kill9(self) -> None:
        assert self.popen is not None
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(10)

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class Stack:
    """Processes started for one test; all stopped at the end."""

    tmp: Path
    env: dict[str, str]
    procs: list[Proc] = field(default_factory=list)

    def _proc(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Proc:
        proc = Proc(args, {**self.env, **(env or {})}, self.tmp / f"{name}-{len(self.procs)}.log")
        self.procs.append(proc)
        return proc.start()

    def serve(self, port: int | None = None) -> tuple[Proc, str]:
        port = port or free_port()
        proc = self._proc("serve", [CLI, "serve", "--port", str(port)])
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            assert proc.popen is not None
            if proc.popen.poll() is not None:
                raise AssertionError(f"serve exited:\n{proc.output()[-3000:]}")
            try:
                return httpx.get(f"{url}/healthz", timeout=1).status_code in {200, 503}
            except httpx.HTTPError:
                return False

        wait_until(up, 30, "the API to answer")
        return proc, url

    def worker(self) -> Proc:
        return self._proc("worker", [CLI, "worker"])

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()


async def seed_device(database_url: str, email: str = "driver@example.com") -> tuple[int, str]:
    """A user, a vehicle and a device straight in the database; returns (vehicle id, token)."""
    from obd2_dashboard.auth.service import create_user
    from obd2_dashboard.devices.service import create_device_for
    from obd2_dashboard.kit.db import make_engine, make_sessionmaker
    from obd2_dashboard.models import Vehicle
    from obd2_dashboard.settings import async_database_url

    engine = make_engine(async_database_url(database_url))
    try:
        async with make_sessionmaker(engine)() as session:
            user = await create_user(session, email, "correct horse battery")
            vehicle = Vehicle(owner_id=user.id, name="Fault car")
            session.add(vehicle)
            await session.flush()
            created = await create_device_for(session, vehicle, "agent")
            await session.commit()
            return vehicle.id, created.token
    finally:
        await engine.dispose()


@contextmanager
def stack(tmp: Path, env: dict[str, str]) -> Iterator[Stack]:
    base = {"PATH": os.environ["PATH"], "LOG_LEVEL": "INFO", "LOG_FORMAT": "json"}
    running = Stack(tmp, {**base, **env})
    try:
        yield running
    finally:
        running.stop()


@dataclass
class RedisServer:
    """A Redis of the test's own on a spare port, so it can be stopped without harm."""

    port: int
    dir: Path
    popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed"
        self.popen = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

        def up() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    return s.recv(16).startswith(b"+PONG")
            except OSError:
                return False

        wait_until(up, 10, "redis-server")

    def kill(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)
