"""The whole stack on loopback, as it runs in production, for the fault suite and the benchmarks.

``Stack`` starts PostgreSQL (a fresh database on the machine's server, or a cluster of its own
made with initdb so that it can be crashed), Redis (a key prefix of its own on the machine's
server, or a redis-server of its own so that it can be restarted), N ``obd2-dashboard serve``
and M ``obd2-dashboard worker`` processes in production mode, and nginx with the project's site
file in front of the API processes (an upstream of N). ``Agent`` is a real ``obd2-bridge run``
against ELM327-emulator or ``obd2-bridge simulate``, uploading through a ``TcpProxy`` that can
cut its network. ``ViewerPool`` keeps SSE viewers on live streams through nginx, resuming with
``Last-Event-ID`` whenever a stream breaks, as the web UI does.

What the agents produced is known exactly: each agent's spool is made here before its first
start, with a ledger table filled by a trigger on every sample the agent spools (seq and time).
The checks at the bottom compare that ledger with the ``samples`` table and with what the
viewers received.
"""

import asyncio
import contextlib
import itertools
import os
import secrets
import signal
import sqlite3
import ssl
import threading
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import asyncpg
import httpx
import orjson
from redis import Redis

from obd2_bridge.spool.store import SCHEMA as SPOOL_SCHEMA
from obd2_dashboard.auth.service import create_user
from obd2_dashboard.devices.service import create_device_for
from obd2_dashboard.kit.db import make_engine, make_sessionmaker
from obd2_dashboard.models import Vehicle
from obd2_dashboard.ops.migrations import upgrade_head
from obd2_dashboard.settings import async_database_url
from obd2_testkit.ports import free_port
from obd2_testkit.stack.nginx import NginxSite
from obd2_testkit.stack.processes import (
    CLI,
    VENV_BIN,
    PostgresCluster,
    Proc,
    RedisServer,
    TcpProxy,
    accepts,
    wait_until,
)

MACHINE_PG_URL = os.environ.get("OBD2_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
MACHINE_REDIS_URL = os.environ.get("OBD2_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PASSWORD = "stack password 1234"
AdapterKind = Literal["elm", "simulate"]


def _with_database(admin_url: str, database: str) -> str:
    return f"{admin_url.rpartition('/')[0]}/{database}"


async def _execute(url: str, sql: str, *args: object) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(url, timeout=10)
    try:
        return list(await connection.fetch(sql, *args))
    finally:
        await connection.close()


# -- storage ----------------------------------------------------------------------------------


@dataclass
class Database:
    """The stack's PostgreSQL database: on the machine's server, or on a cluster of its own."""

    url: str
    admin_url: str
    name: str
    cluster: PostgresCluster | None = None

    @classmethod
    def create(cls, own_cluster: bool) -> "Database":
        name = f"obd2_stack_{uuid.uuid4().hex[:10]}"
        cluster = None
        admin = MACHINE_PG_URL
        if own_cluster:
            cluster = PostgresCluster.create()
            cluster.start()
            admin = cluster.url()
        asyncio.run(_execute(admin, f'CREATE DATABASE "{name}"'))
        database = cls(_with_database(admin, name), admin, name, cluster)

        upgrade_head(async_database_url(database.url))
        return database

    def fetch(self, sql: str, *args: object) -> list[asyncpg.Record]:
        return asyncio.run(_execute(self.url, sql, *args))

    def reachable(self) -> bool:
        try:
            self.fetch("SELECT 1")
        except (OSError, asyncpg.PostgresError, TimeoutError):
            return False
        return True

    def drop(self) -> None:
        if self.cluster is not None:
            self.cluster.remove()
            return
        asyncio.run(_execute(self.admin_url, f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))


@dataclass
class StackRedis:
    """The stack's Redis: a key prefix on the machine's server, or a redis-server of its own."""

    url: str
    prefix: str
    server: RedisServer | None = None

    @classmethod
    def create(cls, own_server: bool, directory: Path) -> "StackRedis":
        prefix = f"obd2stack:{uuid.uuid4().hex[:10]}:"
        if not own_server:
            return cls(MACHINE_REDIS_URL, prefix)
        server = RedisServer(free_port(), directory)
        server.start()
        return cls(server.url, prefix, server)

    def client(self) -> Redis:
        return Redis.from_url(self.url, decode_responses=True, socket_timeout=5)

    def stream_lengths(self) -> dict[str, int]:
        """XLEN of every stream under the prefix (live, work, dead letters, MQTT events)."""
        redis = self.client()
        try:
            lengths = {}
            for key in redis.scan_iter(match=f"{self.prefix}*", count=1000, _type="stream"):
                lengths[key.removeprefix(self.prefix)] = int(redis.xlen(key))
            return lengths
        finally:
            redis.close()

    def forget(self, name: str) -> None:
        redis = self.client()
        try:
            redis.delete(f"{self.prefix}{name}")
        finally:
            redis.close()

    def remove(self) -> None:
        if self.server is not None:
            self.server.kill()
            return
        redis = self.client()
        try:
            keys = list(redis.scan_iter(match=f"{self.prefix}*", count=1000))
            if keys:
                redis.delete(*keys)
        finally:
            redis.close()


# -- what clients need: users, vehicles, devices -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Device:
    id: int
    vehicle_id: int
    token: str


@dataclass(frozen=True, slots=True)
class Fleet:
    email: str
    vehicles: list[int]
    devices: list[Device]


async def make_fleet(
    database_url: str, vehicles: int, devices_per_vehicle: int, password: str = PASSWORD
) -> Fleet:
    """One user owning ``vehicles`` vehicles, each with its devices, through the services."""

    engine = make_engine(async_database_url(database_url))
    email = f"owner-{uuid.uuid4().hex[:6]}@example.com"
    try:
        async with make_sessionmaker(engine)() as session:
            user = await create_user(session, email, password)
            cars = [Vehicle(owner_id=user.id, name=f"car {i}") for i in range(vehicles)]
            session.add_all(cars)
            await session.flush()
            devices = []
            for car in cars:
                for d in range(devices_per_vehicle):
                    made = await create_device_for(session, car, f"pi {d}")
                    devices.append(Device(made.device.id, car.id, made.token))
            await session.commit()
    finally:
        await engine.dispose()
    return Fleet(email, [c.id for c in cars], devices)


# -- the stack --------------------------------------------------------------------------------


@dataclass
class StackConfig:
    apis: int = 2
    workers: int = 2
    own_postgres: bool = False
    own_redis: bool = False
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Api:
    port: int
    proc: Proc | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> Proc:
        assert self.proc is not None
        return self.proc


class Stack:
    """Everything started by ``start`` is stopped and removed by ``stop``."""

    def __init__(self, tmp: Path, config: StackConfig | None = None) -> None:
        self.tmp = tmp
        self.config = config or StackConfig()
        self.secret = "stack-" + secrets.token_urlsafe(40)
        self.database: Database | None = None
        self.broker: StackRedis | None = None
        self.apis: list[Api] = []
        self.workers: list[Proc] = []
        self.nginx: NginxSite | None = None
        self.agents: list[Agent] = []
        self._logs = 0

    # -- lifecycle
    def start(self) -> "Stack":
        self.tmp.mkdir(parents=True, exist_ok=True)
        try:
            self.database = Database.create(self.config.own_postgres)
            self.broker = StackRedis.create(self.config.own_redis, self.tmp)
            self.run_cli("redis-bootstrap")
            self.apis = [Api(free_port()) for _ in range(self.config.apis)]
            for api in self.apis:
                self._launch_api(api)
            for api in self.apis:
                api.running.wait_http(f"{api.url}/readyz")
            for _ in range(self.config.workers):
                self.start_worker()
            self.nginx = NginxSite(self.tmp / "nginx", [a.port for a in self.apis]).start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for agent in self.agents:
            agent.remove()
        for proc in [*self.workers, *(a.proc for a in self.apis if a.proc is not None)]:
            proc.stop()
        if self.nginx is not None:
            self.nginx.stop()
        if self.broker is not None:
            self.broker.remove()
        if self.database is not None:
            self.database.drop()

    @property
    def db(self) -> Database:
        assert self.database is not None
        return self.database

    @property
    def redis(self) -> StackRedis:
        assert self.broker is not None
        return self.broker

    @property
    def site(self) -> NginxSite:
        assert self.nginx is not None
        return self.nginx

    @property
    def url(self) -> str:
        """Where clients reach the stack: nginx, HTTPS."""
        return self.site.https

    def env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/"),
            "OBD2_ENV": "production",
            "DATABASE_URL": self.db.url,
            "REDIS_URL": self.redis.url,
            "REDIS_KEY_PREFIX": self.redis.prefix,
            "SESSION_SECRET": self.secret,
            "DATA_DIR": str(self.tmp / "var"),
            "LOG_LEVEL": "INFO",
            "LOG_FORMAT": "json",
            "PYTHONUNBUFFERED": "1",
            # Faults are found in seconds, not the production default of half a minute.
            "WORKER_CLAIM_IDLE_MS": "1000",
            "WORKER_SWEEP_AGE_S": "2",
            "WORKER_METRICS_PORT": "0",
            "SSE_HEARTBEAT_S": "2",
            **self.config.env,
        }

    def _proc(self, name: str, args: list[str]) -> Proc:
        self._logs += 1
        return Proc([CLI, *args], self.env(), self.tmp / f"{name}-{self._logs}.log", cwd=self.tmp)

    def run_cli(self, *args: str) -> None:
        proc = self._proc(args[0], list(args)).start()
        assert proc.popen is not None
        if proc.popen.wait(60) != 0:
            raise AssertionError(f"obd2-dashboard {' '.join(args)} failed:\n{proc.tail()}")

    # -- API processes (each keeps its port, so nginx's upstream stays right)
    def _launch_api(self, api: Api) -> None:
        api.proc = self._proc(
            "serve", ["serve", "--host", "127.0.0.1", "--port", str(api.port)]
        ).start()

    def kill_api(self, index: int) -> None:
        self.apis[index].running.kill9()

    def restart_api(self, index: int) -> None:
        api = self.apis[index]
        if api.running.alive:
            api.running.stop()
        self._launch_api(api)
        api.running.wait_http(f"{api.url}/healthz", ok=frozenset({200, 503}))

    # -- workers
    def start_worker(self) -> Proc:
        proc = self._proc("worker", ["worker"]).start()
        self.workers.append(proc)
        return proc

    def live_workers(self) -> list[Proc]:
        return [w for w in self.workers if w.alive]

    # -- what every process is
    def server_pids(self) -> dict[str, int]:
        pids = {f"api {i + 1}": a.running.pid for i, a in enumerate(self.apis) if a.running.alive}
        pids |= {f"worker {i + 1}": w.pid for i, w in enumerate(self.live_workers())}
        for i, pid in enumerate(self.site.pids()):
            pids["nginx master" if i == 0 else f"nginx worker {i}"] = pid
        if self.redis.server is not None:
            pids["redis"] = self.redis.server.pid
        return pids

    def ensure_running(self) -> None:
        """Brings back whatever a test left dead (after a failure part-way through a fault)."""
        for i, api in enumerate(self.apis):
            if not api.running.alive:
                self.restart_api(i)
        while len(self.live_workers()) < self.config.workers:
            self.start_worker()
        if self.redis.server is not None and not accepts(self.redis.server.port):
            self.redis.server.start()
        cluster = self.db.cluster
        if cluster is not None and not (cluster.data / "postmaster.pid").exists():
            cluster.start()
        for agent in self.agents:
            agent.ensure_running()

    # -- clients
    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, verify=self.site.ssl_context(), timeout=15)

    def sign_in(self, email: str, password: str = PASSWORD) -> str:
        """A browser session's Cookie header, signed in through nginx."""
        with self.client() as client:
            response = client.post(
                "/api/v1/auth/login", json={"email": email, "password": password}
            )
            response.raise_for_status()
            return "; ".join(f"{k}={v}" for k, v in client.cookies.items())

    def fleet(self, vehicles: int, devices_per_vehicle: int = 1) -> Fleet:
        return asyncio.run(make_fleet(self.db.url, vehicles, devices_per_vehicle))

    def add_agent(self, device: Device, adapter: AdapterKind, name: str | None = None) -> "Agent":
        agent = Agent(self, device, adapter, self.tmp / (name or f"agent-{len(self.agents) + 1}"))
        self.agents.append(agent)
        return agent

    # -- derived data
    def outbox(self) -> int:
        return int(self.db.fetch("SELECT count(*) FROM ingest_outbox")[0][0])

    def wait_derived(self, timeout: float = 60) -> None:
        """Until every stored batch has been turned into rollups (outbox empty)."""
        wait_until(lambda: self.outbox() == 0, timeout, "the workers to empty the outbox")

    def wait_rollups_match(self, timeout: float = 60) -> None:
        """Until the outbox is empty and every rollup equals a recomputation from raw rows."""
        mismatches: list[tuple[Any, ...]] = []

        def consistent() -> bool:
            nonlocal mismatches
            if self.outbox() != 0:
                return False
            mismatches = self.rollup_mismatches()
            return not mismatches

        try:
            wait_until(consistent, timeout, "the rollups to match the raw rows")
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}; outbox {self.outbox()}, mismatches {mismatches[:5]}"
            ) from exc

    def rollup_mismatches(self) -> list[tuple[Any, ...]]:
        """Buckets whose stored rollup differs from a recomputation from raw rows."""
        rows = self.db.fetch(
            "WITH raw AS (SELECT vehicle_id, pid, ts - ts % 60000 AS b, count(*) AS c, "
            "min(value) AS lo, max(value) AS hi, avg(value) AS mean FROM samples "
            "GROUP BY vehicle_id, pid, ts - ts % 60000) "
            "SELECT raw.vehicle_id, raw.pid, raw.b, raw.c, r.count FROM raw "
            "FULL JOIN sample_rollups_1m r ON r.vehicle_id = raw.vehicle_id AND r.pid = raw.pid "
            "AND r.bucket_ts = raw.b WHERE r.count IS DISTINCT FROM raw.c OR r.min <> raw.lo "
            "OR r.max <> raw.hi OR abs(r.avg - raw.mean) > 1e-9"
        )
        return [tuple(r) for r in rows]

    def stored_seqs(self, device_id: int) -> list[int]:
        rows = self.db.fetch("SELECT seq FROM samples WHERE device_id = $1 ORDER BY seq", device_id)
        return [int(r[0]) for r in rows]


# -- agents -----------------------------------------------------------------------------------

# The agent's own spool schema (imported, not copied), plus a ledger: a trigger notes every
# sample the agent spools (seq and time), so what it produced is known exactly.
_LEDGER_SCHEMA = f"""
PRAGMA journal_mode=WAL;
{SPOOL_SCHEMA}
CREATE TABLE ledger (seq INTEGER PRIMARY KEY, produced_ms INTEGER NOT NULL);
CREATE TRIGGER ledger_of_samples AFTER INSERT ON samples BEGIN
    INSERT INTO ledger (seq, produced_ms)
    VALUES (NEW.seq, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
"""


class Agent:
    """``obd2-bridge run`` on an adapter of its own, uploading through a cuttable proxy."""

    def __init__(self, stack: Stack, device: Device, adapter: AdapterKind, base: Path) -> None:
        self.stack = stack
        self.device = device
        self.kind = adapter
        self.base = base
        base.mkdir(parents=True, exist_ok=True)
        self.spool = base / "spool.sqlite3"
        self.adapter_port = free_port()
        self.adapter: Proc | None = None
        self.proxy = TcpProxy(stack.site.https_port).start()
        self.proc: Proc | None = None
        self.starts = 0
        with contextlib.closing(sqlite3.connect(self.spool)) as db:
            db.executescript(_LEDGER_SCHEMA)
        self._start_adapter()

    def _start_adapter(self) -> None:
        env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/")}
        if self.kind == "elm":
            # ELM327-emulator in batch mode: commands on stdin (none), output to a file.
            args = [str(VENV_BIN / "elm"), "-n", str(self.adapter_port)]
            args += ["-b", str(self.base / "elm-batch.out")]
        else:
            args = [str(VENV_BIN / "obd2-bridge"), "simulate", "--port", str(self.adapter_port)]
            args.append("--no-engine-off")
        self.adapter = Proc(args, env, self.base / f"{self.kind}.log", cwd=self.base).start()
        wait_until(lambda: accepts(self.adapter_port), 30, f"the {self.kind} adapter to listen")

    def _config(self) -> Path:
        path = self.base / "agent.toml"
        path.write_text(
            "\n".join(
                [
                    f'adapter = "socket://127.0.0.1:{self.adapter_port}"',
                    f'api_url = "https://127.0.0.1:{self.proxy.port}"',
                    f'token = "{self.device.token}"',
                    f'spool = "{self.spool}"',
                    # 20 fast cycles a second: a lively car that leaves the two cores some air.
                    "fast_interval_s = 0.05",
                    "upload_backoff_min_s = 0.2",
                    "upload_backoff_max_s = 2.0",
                    "websocket_retry_s = 5.0",
                    "ack_timeout_s = 10.0",
                    "status_interval_s = 5.0",
                    "",
                ]
            )
        )
        return path

    def start(self) -> None:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", "/"),
            "SSL_CERT_FILE": str(self.stack.site.cert),
            "PYTHONUNBUFFERED": "1",
        }
        args = [str(VENV_BIN / "obd2-bridge"), "run", "--config", str(self._config())]
        self.starts += 1
        self.proc = Proc(args, env, self.base / "agent.log", cwd=self.base).start()

    def wait_producing(self, timeout: float = 60) -> None:
        before = self.produced_count()
        wait_until(
            lambda: self.produced_count() > before + 50,
            timeout,
            f"{self.base.name} to read the car",
        )

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill9()

    def freeze(self) -> None:
        """Stops the agent in its tracks (SIGSTOP): nothing more is read or uploaded."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        if self.proc is not None and self.proc.alive:
            os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()

    def ensure_running(self) -> None:
        self.thaw()
        self.proxy.restore()
        if self.adapter is None or not self.adapter.alive:
            self._start_adapter()
        if self.proc is None or not self.proc.alive:
            self.start()

    def remove(self) -> None:
        self.stop()
        if self.adapter is not None:
            self.adapter.stop()
        self.proxy.close()

    # -- the spool, read beside the agent (WAL allows readers)
    def _read(self, sql: str, *args: object) -> list[tuple[Any, ...]]:
        with contextlib.closing(sqlite3.connect(f"file:{self.spool}?mode=ro", uri=True)) as db:
            db.execute("PRAGMA busy_timeout=5000")
            return db.execute(sql, args).fetchall()

    def produced(self, until_ms: int | None = None) -> dict[int, int]:
        """seq → when it was spooled (epoch ms), of every sample the agent ever produced."""
        sql = "SELECT seq, produced_ms FROM ledger"
        rows = (
            self._read(sql)
            if until_ms is None
            else self._read(f"{sql} WHERE produced_ms <= ?", until_ms)
        )
        return {int(seq): int(at) for seq, at in rows}

    def produced_count(self) -> int:
        return int(self._read("SELECT count(*) FROM ledger")[0][0])

    def backlog(self) -> int:
        return int(self._read("SELECT count(*) FROM samples")[0][0])

    def spool_meta(self, key: str) -> int:
        rows = self._read("SELECT value FROM meta WHERE key = ?", key)
        return int(rows[0][0]) if rows else 0

    def rejected(self) -> int:
        return int(self._read("SELECT count(*) FROM rejected")[0][0])

    def prefill(self, count: int, *, minutes_ago: float = 90) -> range:
        """Appends ``count`` samples as if the agent had read them offline ``minutes_ago``
        (a long drive with no network); only while the agent is stopped."""
        assert self.proc is None or not self.proc.alive, "the agent owns its spool while it runs"
        start_ms = int(time.time() * 1000 - minutes_ago * 60_000)
        with contextlib.closing(sqlite3.connect(self.spool, isolation_level=None)) as db:
            first = (
                int(db.execute("SELECT value FROM meta WHERE key = 'seq_hwm'").fetchone()[0]) + 1
            )
            db.execute("BEGIN IMMEDIATE")
            db.executemany(
                "INSERT INTO samples (seq, ts, pid, value, slow) VALUES (?, ?, ?, ?, 0)",
                [
                    (first + i, start_ms + i * 10, "RPM" if i % 2 else "SPEED", float(i % 3000))
                    for i in range(count)
                ],
            )
            db.execute("UPDATE meta SET value = ? WHERE key = 'seq_hwm'", (first + count - 1,))
            db.execute("COMMIT")
        return range(first, first + count)


# -- live viewers ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int
    ssl: ssl.SSLContext | None

    @classmethod
    def of(cls, url: str, cafile: Path | None = None) -> "Endpoint":
        scheme, _, rest = url.partition("://")
        host, _, port = rest.rstrip("/").partition(":")
        context = ssl.create_default_context(cafile=str(cafile)) if scheme == "https" else None
        return cls(host, int(port or (443 if scheme == "https" else 80)), context)


async def abort_connection(writer: asyncio.StreamWriter) -> None:
    """Closes the viewer's connection at once, as a closed browser tab does, and waits until its
    socket is closed.

    Not ``writer.close()``: over TLS that sends close_notify and waits for nginx's, which nginx,
    still proxying the stream, may never send; the event loop then ended with the socket still
    open, and the garbage collector reported it later as a leak in some other test.
    """
    writer.transport.abort()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(writer.wait_closed(), 10)


async def _open_stream(
    endpoint: Endpoint, path: str, cookie: str, last_event_id: str | None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]:
    reader, writer = await asyncio.open_connection(
        endpoint.host, endpoint.port, ssl=endpoint.ssl, limit=1 << 20
    )
    try:
        return (
            reader,
            writer,
            await _stream_head(reader, writer, path, endpoint, cookie, last_event_id),
        )
    except BaseException:
        # A process killed mid-answer, a reset, or the viewer cancelled while it waits for the
        # status line: the connection is closed here, not left to the garbage collector (which
        # would report it as a leak in whichever test it happens to run in).
        await abort_connection(writer)
        raise


async def _stream_head(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    path: str,
    endpoint: Endpoint,
    cookie: str,
    last_event_id: str | None,
) -> bool:
    """Sends the request and reads the answer's head; True when the body is chunked."""
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {endpoint.host}:{endpoint.port}",
        "Accept: text/event-stream",
        f"Cookie: {cookie}",
    ]
    if last_event_id:
        lines.append(f"Last-Event-ID: {last_event_id}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    status_line = await reader.readline()
    parts = status_line.split()
    if len(parts) < 2:
        raise ConnectionError("the stream closed before its status line")
    chunked = False
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if parts[1] != b"200":
        raise ConnectionError(f"the stream answered {parts[1].decode()}")
    return chunked


async def read_body(reader: asyncio.StreamReader, chunked: bool) -> AsyncGenerator[bytes, None]:
    """An HTTP response body as it arrives: the chunks of a chunked one, else what is read."""
    if not chunked:
        while data := await reader.read(65536):
            yield data
        return
    while True:
        size_line = await reader.readline()
        if not size_line:
            return
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return
        chunk = await reader.readexactly(size + 2)
        yield chunk[:-2]


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class ViewerLog:
    """What one viewer got: sample events in order, resets, and how its connections went."""

    vehicle_id: int
    events: list[tuple[str, int]] = field(default_factory=list)  # (event id, seq)
    resets: list[tuple[str | None, int]] = field(default_factory=list)  # (event id, at ms)
    connected_ms: int | None = None
    connects: int = 0
    failures: list[str] = field(default_factory=list)


SampleHook = Callable[[int, dict[str, Any], float], None]


class SseViewer:
    """One browser's live view through nginx: reconnects with ``Last-Event-ID`` as the web UI
    does, whatever broke the stream (a killed API process, nginx, the server cutting it off)."""

    def __init__(
        self,
        endpoint: Endpoint,
        vehicle_id: int,
        cookie: str,
        *,
        keep_events: bool = True,
        on_sample: SampleHook | None = None,
        retry_s: float = 0.3,
    ) -> None:
        self.endpoint = endpoint
        self.cookie = cookie
        self.log = ViewerLog(vehicle_id)
        self.keep_events = keep_events
        self.on_sample = on_sample
        self.retry_s = retry_s
        self.last_event_id: str | None = None
        self.ready = asyncio.Event()

    async def run(self) -> None:
        while True:
            try:
                await self._session()
                self.log.failures.append("the stream ended")
            except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError) as exc:
                self.log.failures.append(f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(self.retry_s)

    async def _session(self) -> None:
        path = f"/api/v1/streams/vehicles/{self.log.vehicle_id}"
        reader, writer, chunked = await _open_stream(
            self.endpoint, path, self.cookie, self.last_event_id
        )
        self.log.connects += 1
        if self.log.connected_ms is None:
            self.log.connected_ms = now_ms()
        pending = b""
        body = read_body(reader, chunked)
        try:
            async for chunk in body:
                self.ready.set()
                blocks = (pending + chunk).split(b"\n\n")
                pending = blocks.pop()
                for block in blocks:
                    self._event(block)
        finally:
            await body.aclose()
            await abort_connection(writer)

    def _event(self, block: bytes) -> None:
        event_id: str | None = None
        kind = b"message"
        data = b""
        for line in block.split(b"\n"):
            if line.startswith(b"id: "):
                event_id = line[4:].decode()
            elif line.startswith(b"event: "):
                kind = line[7:]
            elif line.startswith(b"data: "):
                data = line[6:]
        if kind == b"sample":
            assert event_id is not None
            self.last_event_id = event_id
            sample = orjson.loads(data)
            if self.keep_events:
                self.log.events.append((event_id, int(sample["seq"])))
            if self.on_sample is not None:
                self.on_sample(self.log.vehicle_id, sample, time.time())
        elif kind == b"reset":
            if event_id is not None:
                self.last_event_id = event_id
            self.log.resets.append((event_id, now_ms()))


class ViewerPool:
    """SSE viewers on an event loop in a thread of their own, so the test can block meanwhile."""

    def __init__(
        self, endpoint: Endpoint, cookie: str, vehicles: Sequence[int], per_vehicle: int
    ) -> None:
        self.viewers = [
            SseViewer(endpoint, vehicle, cookie) for vehicle in vehicles for _ in range(per_vehicle)
        ]
        self._thread = threading.Thread(target=self._main, daemon=True, name="viewers")
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    @property
    def logs(self) -> list[ViewerLog]:
        return [v.log for v in self.viewers]

    def _main(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        tasks = [asyncio.create_task(v.run()) for v in self.viewers]
        try:
            await asyncio.wait_for(asyncio.gather(*(v.ready.wait() for v in self.viewers)), 30)
        except BaseException as exc:
            self._error = exc
        self._ready.set()
        await self._stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def start(self) -> "ViewerPool":
        self._thread.start()
        self._ready.wait(60)
        if self._error is not None or not self._ready.is_set():
            self.stop()
            failures = [v.log.failures[-1:] for v in self.viewers]
            raise AssertionError(f"viewers could not connect: {self._error!r} {failures}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        # A loop still running past the test would close its connections during a later test.
        assert not self._thread.is_alive(), "the viewers' event loop did not stop"

    @contextlib.contextmanager
    def running(self) -> Iterator["ViewerPool"]:
        self.start()
        try:
            yield self
        finally:
            self.stop()


# -- the checks -------------------------------------------------------------------------------


def _key(event_id: str) -> tuple[int, int, int]:
    entry, _, index = event_id.partition(".")
    ms, _, n = entry.partition("-")
    return int(ms), int(n), int(index)


def wait_stored(stack: Stack, agents: Sequence[Agent], until_ms: int, timeout: float = 60) -> None:
    """Until every sample the agents spooled up to ``until_ms`` is in the database."""

    def all_stored() -> bool:
        for agent in agents:
            produced = agent.produced(until_ms)
            if not set(produced) <= set(stack.stored_seqs(agent.device.id)):
                return False
        return True

    wait_until(all_stored, timeout, "the agents' samples to be stored")


def check_stored_exactly_once(stack: Stack, agent: Agent, until_ms: int) -> None:
    """Every sample the agent spooled up to ``until_ms`` is stored, once (the primary key
    ``(device_id, seq)`` holds no duplicate), nothing stored comes from anywhere else, and the
    device's seqs run without a hole except where the agent restarted (a restart continues
    from ``max(high-water mark + 1, epoch ms * 1000)``)."""
    stored = stack.stored_seqs(agent.device.id)
    produced = agent.produced()  # read second: whatever is stored was spooled before
    assert len(stored) == len(set(stored))
    wanted = {seq for seq, at in produced.items() if at <= until_ms}
    missing = wanted - set(stored)
    assert not missing, f"{len(missing)} spooled samples never stored, e.g. {sorted(missing)[:5]}"
    foreign = set(stored) - set(produced)
    assert not foreign, f"{len(foreign)} stored samples the agent never spooled"
    if wanted:
        last = max(wanted)
        upto = [seq for seq in stored if seq <= last]
        holes = sum(1 for a, b in itertools.pairwise(upto) if b != a + 1)
        assert holes <= agent.starts - 1, f"{holes} holes in the seqs of {agent.starts} runs"
    assert agent.rejected() == 0
    assert agent.spool_meta("dropped") == 0


def check_live(
    viewer: ViewerLog,
    agent: Agent,
    until_ms: int,
    *,
    lost_batches: int = 0,
    margin_ms: int = 1000,
) -> list[int]:
    """What a viewer got, against what its vehicle's agent produced: in stream order, nothing
    twice, and every sample spooled from its first connection (plus ``margin_ms``) to
    ``until_ms`` delivered, unless a ``reset`` came after it (the client then reloads history).
    ``lost_batches``: runs of samples allowed missing without a reset (a batch committed just
    before its API process was killed, never put on the live stream). Returns the seqs
    accepted as missing."""
    assert viewer.vehicle_id == agent.device.vehicle_id
    keys = [_key(event_id) for event_id, _ in viewer.events]
    assert keys == sorted(keys), "events out of stream order"
    assert len(set(keys)) == len(keys), "an event was delivered twice"
    seqs = [seq for _, seq in viewer.events]
    assert len(set(seqs)) == len(seqs), "a sample was delivered twice"
    assert viewer.connected_ms is not None
    produced = agent.produced()
    wanted = sorted(
        seq for seq, at in produced.items() if viewer.connected_ms + margin_ms <= at <= until_ms
    )
    got = set(seqs)
    missing = [seq for seq in wanted if seq not in got]
    reset_times = [at for _, at in viewer.resets]
    uncovered = [seq for seq in missing if not any(r >= produced[seq] for r in reset_times)]
    order = {seq: i for i, seq in enumerate(sorted(produced))}
    runs = sum(
        1 for i, seq in enumerate(uncovered) if i == 0 or order[seq] != order[uncovered[i - 1]] + 1
    )
    assert runs <= lost_batches, (
        f"viewer of vehicle {viewer.vehicle_id}: {len(uncovered)} of {len(wanted)} samples never "
        f"delivered in {runs} runs, without a reset (e.g. {uncovered[:5]}); "
        f"{viewer.connects} connections, failures: {viewer.failures[-3:]}"
    )
    return uncovered


def _undelivered(viewer: ViewerLog, produced: dict[int, int], until_ms: int, margin_ms: int) -> int:
    """Samples the viewer should have and has not, leaving out those a later reset covers."""
    assert viewer.connected_ms is not None
    got = {seq for _, seq in viewer.events}
    last_reset = max((at for _, at in viewer.resets), default=0)
    return sum(
        1
        for seq, at in produced.items()
        if viewer.connected_ms + margin_ms <= at <= until_ms and at > last_reset and seq not in got
    )


def wait_live(
    viewers: Sequence[ViewerLog],
    agents: Sequence[Agent],
    until_ms: int,
    *,
    timeout: float = 30,
    settled_s: float = 2.0,
    margin_ms: int = 1000,
) -> None:
    """Until each viewer has every sample of its vehicle spooled before ``until_ms``, or what
    is missing has not changed for ``settled_s`` (``check_live`` then judges it)."""
    by_vehicle = {a.device.vehicle_id: a for a in agents}
    deadline = time.monotonic() + timeout
    last: int | None = None
    since = time.monotonic()
    while time.monotonic() < deadline:
        produced = {v: a.produced(until_ms) for v, a in by_vehicle.items()}
        missing = sum(_undelivered(v, produced[v.vehicle_id], until_ms, margin_ms) for v in viewers)
        if missing == 0:
            return
        if missing != last:
            last, since = missing, time.monotonic()
        elif time.monotonic() - since >= settled_s:
            return
        time.sleep(0.1)
