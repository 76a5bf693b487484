"""What every benchmark shares: results, scratch databases, Redis prefixes, real server processes.

Benchmarks talk to the product only the way an operator or a client would: a migrated database,
`obd2-dashboard serve` / `worker` subprocesses on loopback ports, HTTP. Set-up that no client could
do (users, vehicles, device tokens) goes straight through the server's own services.
"""

import asyncio
import contextlib
import json
import os
import secrets
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import asyncpg
import httpx
from redis import Redis

from obd2_dashboard.ops.migrations import upgrade_head
from obd2_dashboard.settings import async_database_url
from obd2_testkit.commands import VENV_BIN
from obd2_testkit.ports import free_port
from obd2_testkit.stack.harness import Device, Fleet, abort_connection
from obd2_testkit.stack.harness import make_fleet as make_stack_fleet

ROOT = Path(__file__).resolve().parent.parent

__all__ = ["VENV_BIN", "Device", "Fleet", "free_port"]

PG_ADMIN_URL = os.environ.get("OBD2_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("OBD2_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
PASSWORD = "bench password 1234"

Comparison = Literal[">=", "<=", "<", ">"]


@dataclass(frozen=True, slots=True)
class Target:
    op: Comparison
    bound: float

    def met_by(self, value: float) -> bool:
        match self.op:
            case ">=":
                return value >= self.bound
            case "<=":
                return value <= self.bound
            case "<":
                return value < self.bound
            case ">":
                return value > self.bound

    def __str__(self) -> str:
        return f"{self.op} {self.bound:g}"


@dataclass(frozen=True, slots=True)
class Result:
    """One figure of one benchmark; ``target`` None means reported, not judged."""

    benchmark: str
    figure: str
    value: float
    unit: str
    target: Target | None = None
    note: str = ""

    @property
    def passed(self) -> bool | None:
        return None if self.target is None else self.target.met_by(self.value)

    def as_json(self) -> dict[str, object]:
        data = asdict(self)
        data["target"] = None if self.target is None else str(self.target)
        data["passed"] = self.passed
        return data


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def log(message: str) -> None:
    print(f"  · {message}", file=sys.stderr, flush=True)


# -- storage --------------------------------------------------------------------------------


def pg_url(database: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{database}"


async def _admin(sql: str) -> None:
    connection = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@dataclass(frozen=True, slots=True)
class Scratch:
    """A migrated database and a Redis key prefix of this benchmark's own."""

    database: str
    database_url: str
    redis_prefix: str

    @property
    def asyncpg_url(self) -> str:
        return self.database_url

    def env(self) -> dict[str, str]:
        return {
            "DATABASE_URL": self.database_url,
            "REDIS_URL": REDIS_URL,
            "REDIS_KEY_PREFIX": self.redis_prefix,
            "SESSION_SECRET": "bench-" + secrets.token_urlsafe(40),
        }


@contextlib.contextmanager
def scratch(name: str) -> Iterator[Scratch]:
    database = f"obd2_bench_{name}_{uuid.uuid4().hex[:8]}"
    prefix = f"obd2bench:{name}:{uuid.uuid4().hex[:8]}:"
    asyncio.run(_admin(f'CREATE DATABASE "{database}"'))
    try:
        url = pg_url(database)
        upgrade_head(async_database_url(url))
        yield Scratch(database, url, prefix)
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        redis = Redis.from_url(REDIS_URL)
        try:
            keys = list(redis.scan_iter(match=f"{prefix}*", count=1000))
            if keys:
                redis.delete(*keys)
        finally:
            redis.close()


# -- processes ------------------------------------------------------------------------------


@dataclass(slots=True)
class ServerProcess:
    """An ``obd2-dashboard`` subprocess; its log goes to a file, not a pipe that could fill."""

    args: list[str]
    env: dict[str, str]
    port: int | None = None
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(default_factory=lambda: Path(tempfile.mkstemp(suffix=".log")[1]))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        env = {**os.environ, **self.env, "LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1"}
        with self.log_path.open("wb") as log_file:
            self.process = subprocess.Popen(
                [str(VENV_BIN / "obd2-dashboard"), *self.args],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=tempfile.gettempdir(),
            )

    def wait_healthy(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.args[0]} exited early:\n{self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.args[0]} not healthy after {timeout} s:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_path.unlink(missing_ok=True)


@contextlib.contextmanager
def serve(box: Scratch, *extra: str, env: dict[str, str] | None = None) -> Iterator[ServerProcess]:
    port = free_port()
    server = ServerProcess(
        ["serve", "--host", "127.0.0.1", "--port", str(port), *extra],
        {**box.env(), **(env or {})},
        port,
    )
    server.start()
    try:
        server.wait_healthy()
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def worker(box: Scratch) -> Iterator[ServerProcess]:
    process = ServerProcess(["worker"], box.env())
    process.start()
    try:
        yield process
    finally:
        process.stop()


@dataclass(slots=True)
class ClientProcess:
    """A load or measuring client in a Python process of its own (``python <module> <role>``).

    Protocol on its stdin/stdout: the parent sends one JSON config line; the client prepares
    (imports, connections) and prints ``ready``; the parent sends one JSON ``go`` line (e.g. a
    start time, so that every client begins together); the client prints one JSON report and
    exits. A process of its own keeps a client's CPU off the GIL of the measuring process.
    """

    module: Path
    role: str
    config: dict[str, Any]
    process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(self.module), self.role],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=str(self.module.parent),
        )
        self._send(self.config)

    def _send(self, message: dict[str, Any]) -> None:
        assert self.process is not None
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()

    def wait_ready(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"{self.module.name} {self.role} did not start: {line!r}")

    def go(self, message: dict[str, Any]) -> None:
        assert self.process is not None
        assert self.process.stdin is not None
        self._send(message)
        self.process.stdin.close()
        self.process.stdin = None  # so that communicate() only collects the report

    def report(self, timeout: float) -> Any:
        assert self.process is not None
        try:
            out, _ = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        if self.process.returncode != 0:
            raise RuntimeError(f"{self.module.name} {self.role} exited {self.process.returncode}")
        try:
            return json.loads(out)
        except ValueError as exc:
            raise RuntimeError(
                f"{self.module.name} {self.role}: no report ({exc}; {len(out)} characters)"
            ) from exc

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def clients(module: str, role: str, configs: list[dict[str, Any]]) -> Iterator[list[ClientProcess]]:
    """Client processes, each started and ready (waiting for ``go``)."""
    started = [ClientProcess(Path(module).resolve(), role, c) for c in configs]
    try:
        for client in started:
            client.start()
        for client in started:
            client.wait_ready()
        yield started
    finally:
        for client in started:
            client.kill()


def client_config() -> dict[str, Any]:
    """In a client process: the config its parent sent."""
    config: dict[str, Any] = json.loads(sys.stdin.readline())
    return config


def client_ready() -> dict[str, Any]:
    """In a client process: says it is ready, then waits for the parent's go."""
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    message: dict[str, Any] = json.loads(sys.stdin.readline())
    return message


def client_report(report: Any) -> None:
    # An event loop may have left stdout non-blocking: a report larger than the pipe would
    # then be cut short.
    os.set_blocking(sys.stdout.fileno(), True)
    sys.stdout.write(json.dumps(report))
    sys.stdout.flush()


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def process_tree(pid: int) -> list[int]:
    tree = [pid]
    for child in children(pid):
        tree.extend(process_tree(child))
    return tree


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: Sequence[int]) -> dict[int, float]:
    """User plus system CPU time so far of each process still alive."""
    times = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        times[pid] = (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
    return times


@dataclass(slots=True)
class CpuMeter:
    """CPU spent by a set of processes between ``start`` and ``stop`` (busy machines share
    the wall clock with others; CPU seconds per unit of work do not)."""

    pids: Sequence[int]
    before: dict[int, float] = field(default_factory=dict)
    seconds: float = 0.0

    def start(self) -> None:
        self.before = cpu_seconds(self.pids)

    def stop(self) -> float:
        after = cpu_seconds(self.pids)
        self.seconds = sum(after[p] - self.before[p] for p in after if p in self.before)
        return self.seconds


async def backend_pids(box: "Scratch") -> list[int]:
    """The PostgreSQL server processes serving the scratch database."""
    async with pg(box) as connection:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            box.database,
        )
    return [int(r["pid"]) for r in rows]


# -- a lean HTTP client for load -------------------------------------------------------------


class LeanHttp:
    """One HTTP/1.1 keep-alive connection that sends requests and reads ``Content-Length`` answers.

    Load generators use it where httpx would spend more CPU per request than the server under
    test (the machine's cores are shared, so a costly client lowers the figure it measures).
    """

    def __init__(self, url: str, ssl_context: ssl.SSLContext | None = None) -> None:
        scheme, _, host_port = url.rstrip("/").rpartition("://")
        host, _, port = host_port.partition(":")
        self.ssl = ssl_context if scheme == "https" else None
        self.host, self.port = host, int(port or (443 if scheme == "https" else 80))
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> "LeanHttp":
        await self._connect()
        return self

    async def _connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(
            self.host, self.port, ssl=self.ssl
        )

    async def __aexit__(self, *_: object) -> None:
        if self._writer is not None:
            await abort_connection(self._writer)

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        if self._writer is None:
            await self._connect()  # the server said it would close the last one
        assert self._reader is not None
        assert self._writer is not None
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        lines.append(f"Content-Length: {len(body)}")
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        status_line = await self._reader.readline()
        if not status_line:
            raise ConnectionError("server closed the connection")
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        closing = False
        while True:
            line = await self._reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                # nginx ends a keep-alive connection after keepalive_requests (1 000) requests.
                closing = True
        body = await self._reader.readexactly(length) if length else b""
        if closing:
            await abort_connection(self._writer)
            self._reader = self._writer = None
        return status, body


# -- fixtures through the server's services --------------------------------------------------


async def make_fleet(box: Scratch, vehicles: int, devices_per_vehicle: int) -> Fleet:
    return await make_stack_fleet(box.database_url, vehicles, devices_per_vehicle, PASSWORD)


async def sign_in(base_url: str, email: str) -> dict[str, str]:
    """The cookies of a fresh browser session."""
    async with httpx.AsyncClient(base_url=base_url) as client:
        response = await client.post(
            "/api/v1/auth/login", json={"email": email, "password": PASSWORD}
        )
        response.raise_for_status()
        return dict(response.cookies)


@contextlib.asynccontextmanager
async def pg(box: Scratch) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(box.asyncpg_url)
    try:
        yield connection
    finally:
        await connection.close()
