"""infra/nginx/obd2-dashboard.conf in a real nginx on loopback ports, with a certificate made here.

The site file is used as shipped except for its ports, paths and the servers of its upstream,
and its snippets (infra/nginx/snippets) are installed beside the test's nginx.conf as Debian has
them beside /etc/nginx/nginx.conf; the test's own nginx.conf stands in for what
/etc/nginx/nginx.conf gives the site on a server. Used by infra/tests/test_nginx_site.py (one API
or an upstream in the test's process) and the whole-stack suite (several APIs).
"""

import os
import shutil
import signal
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import uvicorn

from obd2_testkit import REPO
from obd2_testkit.ports import free_port
from obd2_testkit.stack.processes import tool

SITE = REPO / "infra/nginx/obd2-dashboard.conf"
# Port 80 and what both files use at nginx's http {} level; installed and enabled first.
SITE_HTTP = REPO / "infra/nginx/obd2-dashboard-http.conf"
SITE_FILES = (SITE_HTTP, SITE)
# The site includes these as snippets/<name>, which nginx resolves against its configuration
# directory (/etc/nginx on Debian, the test's base directory here).
SNIPPETS = REPO / "infra/nginx/snippets"
SHIPPED_UPSTREAM = "server 127.0.0.1:8000;"
# The host name in the shipped site, which the operator replaces with the real one: the tests
# leave it, and send it as Host where the site's behaviour depends on it.
SHIPPED_NAME = "dashboard.example.com"


def make_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def site_text() -> str:
    """Both site files, as nginx reads them from sites-enabled/ (port 80's first)."""
    return "".join(file.read_text() for file in SITE_FILES)


def templated_site(replacements: dict[str, str], *, only_http: bool = False) -> str:
    text = SITE_HTTP.read_text() if only_http else site_text()
    for old, new in replacements.items():
        if only_http and old not in text:
            continue  # a setting of the port-443 file
        assert old in text, f"the site file no longer contains {old!r}"
        text = text.replace(old, new)
    return text


def wait_for_port(port: int, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return
        except httpx.TransportError:
            assert time.monotonic() < deadline, f"{what} did not answer on port {port}"
            time.sleep(0.1)


@contextmanager
def serving(app: Any, what: str, lifespan: Literal["on", "off"] = "on") -> Iterator[int]:
    """The ASGI ``app`` on a spare loopback port, in a thread of this process; yields the port."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan=lifespan)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), f"{what} did not start"
        assert time.monotonic() < deadline, f"{what} did not answer on port {port}"
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@dataclass(frozen=True)
class Received:
    """One request or WebSocket handshake as it reached the upstream."""

    kind: str  # "http" or "websocket"
    path: str
    query: str
    headers: list[tuple[str, str]]

    def values(self, name: str) -> list[str]:
        """Every value of the header ``name`` (a list: a header sent twice shows as two)."""
        return [v for k, v in self.headers if k == name.lower()]

    def header(self, name: str) -> str:
        """The one value of ``name``; fails when it is missing or was sent more than once."""
        values = self.values(name)
        assert len(values) == 1, f"{name}: {values} in {self.kind} {self.path}"
        return values[0]


@dataclass
class RecordingUpstream:
    """An ASGI app (served with lifespan off) that keeps what nginx sends it: every request
    answers 200 with a small JSON body, every WebSocket is accepted and echoes what it gets."""

    received: list[Received] = field(default_factory=list)

    def last(self, path: str) -> Received:
        found = [r for r in self.received if r.path == path]
        assert found, f"nothing reached the upstream at {path}"
        return found[-1]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        query = scope["query_string"].decode("latin-1")
        self.received.append(Received(scope["type"], scope["path"], query, headers))
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.accept"})
            while (message := await receive())["type"] == "websocket.receive":
                await send({"type": "websocket.send", "text": message.get("text") or ""})
            return
        while (await receive()).get("more_body"):
            pass
        await send(
            {"type": "http.response.start", "status": 200,
             "headers": [(b"content-type", b"application/json")]}
        )  # fmt: skip
        await send({"type": "http.response.body", "body": b'{"recorded": true}'})


@dataclass
class NginxSite:
    """The shipped site in front of ``upstreams`` (API ports), on two spare loopback ports."""

    base: Path
    upstreams: list[int]
    dist: Path | None = None
    acme: Path | None = None
    worker_connections: int = 1024
    # Only the port-80 file, as the guide enables it before there is a certificate.
    only_http: bool = False
    http_port: int = field(default_factory=free_port)
    https_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def https(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def cert(self) -> Path:
        return self.base / "cert.pem"

    @property
    def access_log(self) -> Path:
        return self.base / "access.log"

    @property
    def error_log(self) -> Path:
        return self.base / "error.log"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(verify=self.ssl_context(), timeout=10, **kwargs)  # type: ignore[arg-type]

    def _write_site(self) -> None:
        servers = "\n    ".join(f"server 127.0.0.1:{port};" for port in self.upstreams)
        dist = self.dist or self.base / "dist"
        acme = self.acme or self.base / "acme"
        dist.mkdir(exist_ok=True)
        acme.mkdir(exist_ok=True)
        snippets = self.base / "snippets"
        snippets.mkdir(exist_ok=True)
        for snippet in SNIPPETS.glob("*.conf"):
            shutil.copyfile(snippet, snippets / snippet.name)
        (self.base / "site.conf").write_text(
            templated_site(
                {
                    "listen 80;": f"listen 127.0.0.1:{self.http_port};",
                    "listen [::]:80;": "",
                    "listen 443 ssl http2;": f"listen 127.0.0.1:{self.https_port} ssl http2;",
                    "listen [::]:443 ssl http2;": "",
                    "/etc/letsencrypt/live/dashboard.example.com/fullchain.pem": str(self.cert),
                    "/etc/letsencrypt/live/dashboard.example.com/privkey.pem": str(
                        self.base / "key.pem"
                    ),
                    SHIPPED_UPSTREAM: servers,
                    "/opt/obd2-dashboard/current/apps/web/dist": str(dist),
                    "/var/www/letsencrypt": str(acme),
                    "/var/log/nginx/obd2-dashboard.access.log": str(self.access_log),
                    "/var/log/nginx/error.log": str(self.error_log),
                },
                only_http=self.only_http,
            )
        )

    def start(self) -> "NginxSite":
        self.base.mkdir(parents=True, exist_ok=True)
        make_certificate(self.base)
        self._write_site()
        main_conf = self.base / "nginx.conf"
        # What Debian's /etc/nginx/nginx.conf sets in http {} that the site depends on or must
        # withstand (gzip on, for text/html) is set here the same.
        # As root, workers would otherwise run as nobody and could not read the test's files.
        user = "user root;" if os.geteuid() == 0 else ""
        main_conf.write_text(
            f"""
            {user}
            worker_processes 1;
            pid {self.base}/nginx.pid;
            error_log {self.error_log} warn;
            events {{ worker_connections {self.worker_connections}; }}
            http {{
                include /etc/nginx/mime.types;
                default_type application/octet-stream;
                gzip on;
                client_body_temp_path {self.base}/client_body;
                proxy_temp_path {self.base}/proxy;
                fastcgi_temp_path {self.base}/fastcgi;
                uwsgi_temp_path {self.base}/uwsgi;
                scgi_temp_path {self.base}/scgi;
                include {self.base}/site.conf;
            }}
            """
        )
        nginx = tool("nginx")
        checked = subprocess.run(
            [nginx, "-t", "-p", str(self.base), "-c", str(main_conf)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert checked.returncode == 0, checked.stderr
        self.process = subprocess.Popen(
            [nginx, "-p", str(self.base), "-c", str(main_conf), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        wait_for_port(self.http_port, "nginx")
        return self

    def set_upstreams(self, ports: list[int]) -> None:
        """Rewrites the upstream's servers and reloads nginx (new connections use them)."""
        assert self.process is not None
        self.upstreams = list(ports)
        self._write_site()
        before = self._worker_pids()
        self.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while self._worker_pids() & before == before and time.monotonic() < deadline:
            time.sleep(0.05)

    def _worker_pids(self) -> set[int]:
        assert self.process is not None
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return {int(p) for p in path.read_text().split()} if path.exists() else set()

    def pids(self) -> list[int]:
        """The master and its workers."""
        assert self.process is not None
        return [self.process.pid, *sorted(self._worker_pids())]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        shutil.rmtree(self.base / "proxy", ignore_errors=True)
