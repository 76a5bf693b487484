"""Real processes on loopback for tests and benchmarks: ours, Redis, PostgreSQL, a TCP proxy.

Shared by the server's fault tests (``apps/dashboard-api/tests/processes.py``), the whole-stack
suite (``tests/stack``) and the benchmarks (``bench/``). Standard library and httpx only.
"""

import contextlib
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from obd2_testkit.ports import free_port

VENV_BIN = Path(sys.executable).parent
CLI = str(VENV_BIN / "obd2-dashboard")


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def tool(name: str) -> str:
    """The path of a program tools/bootstrap.sh installs (some live in /usr/sbin)."""
    for candidate in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise AssertionError(f"{name} is not installed: run tools/bootstrap.sh --test")


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@dataclass
class Proc:
    """A subprocess in a session of its own, its output appended to a log file."""

    args: list[str]
    env: dict[str, str]
    log: Path
    cwd: Path | None = None
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> "Proc":
        handle = self.log.open("ab")
        self.popen = subprocess.Popen(
            self.args,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=self.cwd,
            start_new_session=True,
        )
        handle.close()
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

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
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def wait_http(
        self,
        url: str,
        timeout: float = 60,
        ok: frozenset[int] = frozenset({200}),
        verify: Path | None = None,
    ) -> None:
        """Until ``url`` answers one of ``ok``; fails at once if the process exits."""

        def up() -> bool:
            if not self.alive:
                raise AssertionError(f"{self.args[1:2]} exited:\n{self.tail()}")
            try:
                trust = ssl.create_default_context(cafile=verify) if verify else True
                answer = httpx.get(url, timeout=1, verify=trust)
                return answer.status_code in ok
            except httpx.HTTPError:
                return False

        wait_until(up, timeout, f"{url} to answer")


@dataclass
class RedisServer:
    """A Redis of the caller's own on a spare port, so it can be stopped without harm; with a
    password, it requires it (``--requirepass``) and ``url`` carries it."""

    port: int
    dir: Path
    popen: subprocess.Popen[bytes] | None = None
    password: str | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password is not None else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

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
                *(["--requirepass", self.password] if self.password is not None else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        # A password goes as a RESP array, so that any character in it is sent as it is.
        auth = b""
        if self.password is not None:
            secret = self.password.encode()
            auth = b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(secret), secret)

        def up() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(auth + b"PING\r\n")
                    expected = (b"+OK\r\n" if auth else b"") + b"+PONG"
                    received = b""
                    while len(received) < len(expected):
                        chunk = s.recv(64)
                        if not chunk:
                            break
                        received += chunk
                    return received.startswith(expected)
            except OSError:
                return False

        wait_until(up, 10, "redis-server")

    def kill(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)


def _postgres_bin() -> Path:
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    assert versions, "PostgreSQL's server programs (initdb) are not installed"
    return versions[-1].parent


@dataclass
class PostgresCluster:
    """A PostgreSQL cluster of the caller's own, made with initdb on a spare port, so it can be
    crashed and restarted while the machine's server is left alone.

    PostgreSQL refuses to run as root: as root, the cluster belongs to the ``postgres`` user.
    """

    port: int
    base: Path
    bin: Path
    user: str | None
    # The environment of initdb and pg_ctl, so of the server and its archive_command.
    env: dict[str, str] | None = None

    @classmethod
    def create(cls) -> "PostgresCluster":
        user = "postgres" if os.geteuid() == 0 else None
        # Under /tmp itself, not the caller's (private) temporary directory, so that the
        # server's own user can reach it.
        base = Path(tempfile.mkdtemp(prefix="obd2-pg-"))
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(base, entry.pw_uid, entry.pw_gid)
        cluster = cls(free_port(), base, _postgres_bin(), user)
        cluster._run(
            "initdb",
            "-D",
            str(cluster.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        return cluster

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def log(self) -> Path:
        return self.base / "server.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, program: str, *args: str, timeout: float = 120) -> None:
        done = subprocess.run(
            [str(self.bin / program), *args],
            user=self.user,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.base,
            env=self.env,
        )
        if done.returncode != 0:
            raise AssertionError(f"{program} failed: {done.stderr or done.stdout}")

    def give(self, path: Path) -> None:
        """Hands a file or directory tree to the cluster's user (a no-op when not root)."""
        if self.user is None:
            return
        entry = pwd.getpwnam(self.user)
        for item in [path, *(path.rglob("*") if path.is_dir() else [])]:
            os.chown(item, entry.pw_uid, entry.pw_gid)

    def add_settings(self, text: str) -> None:
        """Appends postgresql.conf lines (later lines win); they apply at the next start."""
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n" + text)

    def run_as_owner(
        self, *argv: str, env: dict[str, str] | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        """Runs a program as the cluster's user (pgBackRest must own what it writes)."""
        return subprocess.run(
            list(argv), user=self.user, capture_output=True, text=True, timeout=timeout,
            check=False, cwd=self.base, env=env if env is not None else self.env,
        )  # fmt: skip

    def wipe(self) -> None:
        """The disk is gone: the server is killed and its data directory, WAL and all, deleted."""
        with contextlib.suppress(AssertionError):
            self.crash()
        shutil.rmtree(self.data)
        self.data.mkdir(mode=0o700)
        self.give(self.data)

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.base} "
            "-c fsync=off -c max_connections=200"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60",
            "start",
        )  # fmt: skip

    def crash(self) -> None:
        """Stops the server the way a crash would (no shutdown checkpoint): recovery on start."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
            self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def server_pids(self) -> list[int]:
        """The postmaster and its children (backends, background processes)."""
        pid_file = self.data / "postmaster.pid"
        if not pid_file.exists():
            return []
        leader = int(pid_file.read_text().split()[0])
        children = Path(f"/proc/{leader}/task/{leader}/children")
        found = [leader]
        if children.exists():
            found += [int(p) for p in children.read_text().split()]
        return found


@dataclass
class S3Server:
    """An S3-compatible object store on 127.0.0.1 over TLS, for an off-site repository: moto's
    server on plain HTTP behind nginx, which ends TLS with a certificate made here for
    127.0.0.1 (in ``ca_file``). nginx and not moto's own TLS: pgBackRest reads each of moto's
    responses as a TLS error (the connection closes without TLS's closing message)."""

    base: Path
    port: int = 0
    moto: Proc | None = None
    nginx: Proc | None = None

    @property
    def ca_file(self) -> Path:
        return self.base / "s3-cert.pem"

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def _trust(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)

    def start(self) -> "S3Server":
        self.base.mkdir(parents=True, exist_ok=True)
        key = self.base / "s3-key.pem"
        subprocess.run(
            [tool("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:127.0.0.1",
             "-keyout", str(key), "-out", str(self.ca_file)],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        self.ca_file.chmod(0o644)
        moto_port, self.port = free_port(), free_port()
        self.moto = Proc(
            [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(moto_port)],
            env=os.environ | {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"},
            log=self.base / "moto.log",
        ).start()
        self.moto.wait_http(f"http://127.0.0.1:{moto_port}/", ok=frozenset(range(200, 500)))
        user = "user root;" if os.geteuid() == 0 else ""
        conf = self.base / "nginx.conf"
        conf.write_text(
            f"""{user}
            worker_processes 1;
            pid {self.base}/nginx.pid;
            error_log {self.base}/nginx-error.log;
            events {{}}
            http {{
                access_log off;
                client_body_temp_path {self.base}/client_body;
                proxy_temp_path {self.base}/proxy;
                fastcgi_temp_path {self.base}/fastcgi;
                uwsgi_temp_path {self.base}/uwsgi;
                scgi_temp_path {self.base}/scgi;
                server {{
                    listen 127.0.0.1:{self.port} ssl;
                    ssl_certificate {self.ca_file};
                    ssl_certificate_key {key};
                    client_max_body_size 0;
                    location / {{
                        proxy_pass http://127.0.0.1:{moto_port};
                        proxy_set_header Host $http_host;
                        proxy_http_version 1.1;
                        proxy_request_buffering off;
                        proxy_buffering off;
                    }}
                }}
            }}
            """
        )
        self.nginx = Proc(
            [tool("nginx"), "-p", str(self.base), "-c", str(conf), "-g", "daemon off;"],
            env=dict(os.environ),
            log=self.base / "nginx.log",
        ).start()
        answers = frozenset(range(200, 500))
        self.nginx.wait_http(f"{self.endpoint}/", ok=answers, verify=self.ca_file)
        return self

    def create_bucket(self, name: str) -> None:
        response = httpx.put(f"{self.endpoint}/{name}", verify=self._trust(), timeout=10)
        assert response.status_code == 200, response.text

    def stop(self) -> None:
        for proc in (self.nginx, self.moto):
            if proc is not None:
                proc.stop()


@dataclass
class TcpProxy:
    """A TCP relay that can cut the network like a pulled cable: while cut, nothing moves in
    either direction and new connections hang (as when packets are dropped, not refused);
    once restored, what waited flows on, unless an end gave up meanwhile.
    """

    target_port: int
    port: int = 0
    _listener: socket.socket | None = None
    _flowing: threading.Event = field(default_factory=threading.Event)
    _closed: bool = False
    _sockets: list[socket.socket] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    connections: int = 0

    def start(self) -> "TcpProxy":
        self._flowing.set()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True, name="proxy-accept").start()
        return self

    @property
    def is_cut(self) -> bool:
        return not self._flowing.is_set()

    def cut(self) -> None:
        self._flowing.clear()

    def restore(self) -> None:
        self._flowing.set()

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        self._flowing.wait()
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        with self._lock:
            self._sockets += [client, upstream]
            self.connections += 1
        for src, dst in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while not self._closed:
                self._flowing.wait()
                data = src.recv(65536)
                if not data:
                    break
                self._flowing.wait()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def close(self) -> None:
        self._closed = True
        self._flowing.set()
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
