"""Real server processes for fault tests: `obd2-dashboard serve`/`worker` and a Redis of our own.

The process helpers themselves are shared with the whole-stack suite and the benchmarks
(``stack.processes``, under tests/ at the repository's root).
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from obd2_dashboard.auth.service import create_user
from obd2_dashboard.devices.service import create_device_for
from obd2_dashboard.kit.db import make_engine, make_sessionmaker
from obd2_dashboard.models import Vehicle
from obd2_dashboard.settings import async_database_url
from obd2_testkit.ports import free_port
from obd2_testkit.stack.processes import CLI, Proc, RedisServer, wait_until

__all__ = ["CLI", "Proc", "RedisServer", "Stack", "free_port", "seed_device", "stack", "wait_until"]


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
