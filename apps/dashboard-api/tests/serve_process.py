"""A real `obd2-dashboard serve` process on a database and Redis prefix of its own.

For tests that drive the server from outside as a client would (schemathesis, log capture): the
process is the one production runs, its stderr is kept in a file, and what the test seeds goes
straight through the services into the same database.
"""

import asyncio
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from obd2_dashboard.kit.db import make_engine, make_sessionmaker
from obd2_dashboard.ops.migrations import upgrade_head
from obd2_dashboard.settings import async_database_url
from tests.conftest import (
    CLI,
    REDIS_URL,
    SESSION_SECRET,
    _pg_url,
    clean_env,
    create_pg_database,
    delete_redis_keys,
    drop_pg_database,
    free_port,
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Storage:
    """A migrated database of its own and, on Postgres, a Redis prefix of its own."""

    kind: str
    database_url: str
    redis_url: str | None
    redis_prefix: str

    def env(self) -> dict[str, str]:
        env = {"DATABASE_URL": self.database_url, "REDIS_KEY_PREFIX": self.redis_prefix}
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
        return env

    def run(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Runs ``work`` in a transaction of its own (committed) and returns what it returned."""

        async def main() -> T:
            engine = make_engine(async_database_url(self.database_url))
            try:
                async with make_sessionmaker(engine)() as session:
                    result = await work(session)
                    await session.commit()
                    return result
            finally:
                await engine.dispose()

        return asyncio.run(main())


@contextmanager
def fresh_storage(kind: str, tmp: Path) -> Iterator[Storage]:
    prefix = f"obd2test:{uuid.uuid4().hex[:12]}:"
    if kind == "sqlite":
        url = f"sqlite:///{tmp / 'fresh.sqlite3'}"
        upgrade_head(async_database_url(url))
        yield Storage(kind, url, None, prefix)
        return
    name = create_pg_database()
    try:
        url = _pg_url(name)
        upgrade_head(async_database_url(url))
        yield Storage(kind, url, REDIS_URL, prefix)
    finally:
        drop_pg_database(name)
        delete_redis_keys(prefix)


@dataclass(slots=True)
class ServeProcess:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> str:
        """Stops the server (SIGTERM, as systemd does) and returns everything it logged."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)
        return self.output()


@contextmanager
def serve_process(storage: Storage, tmp: Path, **env: str) -> Iterator[ServeProcess]:
    """``obd2-dashboard serve`` on ``storage`` (Redis bootstrapped first, as a deploy does)."""
    variables = clean_env(
        SESSION_SECRET=SESSION_SECRET,
        LOG_FORMAT="json",
        DATA_DIR=str(tmp / "var"),
        **storage.env(),
    )
    variables.update(env)
    if storage.redis_url:
        subprocess.run(
            [str(CLI), "redis-bootstrap"], env=variables, check=True, capture_output=True
        )
    port = free_port()
    log = tmp / f"serve-{port}.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [str(CLI), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=variables,
            cwd=tmp,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    running = ServeProcess(f"http://127.0.0.1:{port}", process, log)
    try:
        # Not a timed assertion: the deadline only stops a server that never comes up.
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, running.output()
            try:
                if httpx.get(f"{running.url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        yield running
    finally:
        running.stop()
