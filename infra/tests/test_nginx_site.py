"""infra/nginx/obd2-dashboard.conf in a real nginx on loopback ports, with a certificate made here.

The site file is used as shipped except for its ports and paths. The upstream is the real API
(create_app on an embedded database) plus, until the telemetry pipeline's own stream routes land,
two stand-in routes of this test at their paths: an SSE route that sends one event and then holds
the response open until the test lets it go on, and a WebSocket echo at both WebSocket paths.
"""

import json
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, WebSocket
from fastapi.responses import StreamingResponse
from websockets.sync.client import connect

from infra.tests.conftest import REPO, free_port, tool
from obd2_dashboard.app import create_app
from obd2_dashboard.ops.migrations import upgrade_head
from obd2_dashboard.settings import Settings

SITE = REPO / "infra/nginx/obd2-dashboard.conf"
ASSET = "assets/app.3f2a1b.js"


@dataclass
class StreamGate:
    """Lets the stand-in SSE route go on past its first event, and says whether it ended."""

    release: threading.Event
    finished: threading.Event


def add_stand_in_stream_routes(app: FastAPI, gate: StreamGate) -> None:
    @app.get("/api/v1/streams/vehicles/{vehicle_id}")
    async def slow_events(vehicle_id: int) -> StreamingResponse:
        async def events() -> AsyncIterator[bytes]:
            import asyncio

            yield b'id: 1\nevent: sample\ndata: {"seq": 1, "pid": "RPM", "value": 900}\n\n'
            while not gate.release.is_set():
                await asyncio.sleep(0.05)
            yield b'id: 2\nevent: sample\ndata: {"seq": 2, "pid": "RPM", "value": 950}\n\n'
            gate.finished.set()

        return StreamingResponse(events(), media_type="text/event-stream")

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        message = await websocket.receive_text()
        await websocket.send_text(json.dumps({"echo": json.loads(message)}))
        await websocket.close()

    app.add_api_websocket_route("/api/v1/streams/ws", echo)
    app.add_api_websocket_route("/api/v1/bridge/ws", echo)


@dataclass
class Site:
    https: str
    http: str
    ssl_context: ssl.SSLContext
    access_log: Path
    gate: StreamGate

    def client(self) -> httpx.Client:
        return httpx.Client(verify=self.ssl_context, timeout=10)


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


def templated_site(replacements: dict[str, str]) -> str:
    text = SITE.read_text()
    for old, new in replacements.items():
        assert old in text, f"the site file no longer contains {old!r}"
        text = text.replace(old, new)
    return text


def wait_for_port(port: int, what: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return
        except httpx.TransportError:
            assert time.monotonic() < deadline, f"{what} did not answer on port {port}"
            time.sleep(0.1)


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, StreamGate]]:
    data = tmp_path_factory.mktemp("api")
    settings = Settings(DATA_DIR=data, BACKUP_DIR=data / "backups")
    upgrade_head(settings.database_url)
    app = create_app(settings)
    gate = StreamGate(threading.Event(), threading.Event())
    add_stand_in_stream_routes(app, gate)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for_port(port, "the API")
    try:
        yield port, gate
    finally:
        gate.release.set()
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, upstream: tuple[int, StreamGate]
) -> Iterator[Site]:
    api_port, gate = upstream
    base = tmp_path_factory.mktemp("nginx")
    cert, key = make_certificate(base)
    dist, acme = base / "dist", base / "acme"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>obd2-dashboard</title>")
    (dist / ASSET).write_text("console.log('hashed');")
    (acme / ".well-known/acme-challenge").mkdir(parents=True)
    (acme / ".well-known/acme-challenge/token123").write_text("token123.key")
    http_port, https_port = free_port(), free_port()
    access_log = base / "access.log"
    site_conf = base / "site.conf"
    site_conf.write_text(
        templated_site(
            {
                "listen 80;": f"listen 127.0.0.1:{http_port};",
                "listen [::]:80;": "",
                "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
                "listen [::]:443 ssl http2;": "",
                "/etc/letsencrypt/live/dashboard.example.com/fullchain.pem": str(cert),
                "/etc/letsencrypt/live/dashboard.example.com/privkey.pem": str(key),
                "server 127.0.0.1:8000;": f"server 127.0.0.1:{api_port};",
                "/opt/obd2-dashboard/current/apps/web/dist": str(dist),
                "/var/www/letsencrypt": str(acme),
                "/var/log/nginx/obd2-dashboard.access.log": str(access_log),
            }
        )
    )
    # The test's own nginx.conf: what /etc/nginx/nginx.conf gives the site on a server.
    main_conf = base / "nginx.conf"
    main_conf.write_text(
        f"""
        user root;
        worker_processes 1;
        pid {base}/nginx.pid;
        error_log {base}/error.log warn;
        events {{ worker_connections 256; }}
        http {{
            include /etc/nginx/mime.types;
            default_type application/octet-stream;
            client_body_temp_path {base}/client_body;
            proxy_temp_path {base}/proxy;
            fastcgi_temp_path {base}/fastcgi;
            uwsgi_temp_path {base}/uwsgi;
            scgi_temp_path {base}/scgi;
            include {site_conf};
        }}
        """
    )
    nginx = tool("nginx")
    checked = subprocess.run(
        [nginx, "-t", "-p", str(base), "-c", str(main_conf)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen(
        [nginx, "-p", str(base), "-c", str(main_conf), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(http_port, "nginx")
        context = ssl.create_default_context(cafile=str(cert))
        yield Site(
            f"https://127.0.0.1:{https_port}", f"http://127.0.0.1:{http_port}", context,
            access_log, gate,
        )  # fmt: skip
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(base / "proxy", ignore_errors=True)


def logged(site: Site, request_id: str) -> list[dict[str, object]]:
    # nginx writes the access log line once the response is done.
    deadline = time.monotonic() + 10
    while True:
        entries = [json.loads(line) for line in site.access_log.read_text().splitlines()]
        found = [e for e in entries if e["request_id"] == request_id]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_https_healthz_with_tls_12_or_13_and_security_headers(site: Site) -> None:
    with site.client() as client:
        response = client.get(f"{site.https}/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.headers["strict-transport-security"].startswith("max-age=63072000")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    # openssl, told to offer old versions too, so that a refusal comes from the server.
    assert handshake(site, "-tls1_2") == 0
    assert handshake(site, "-tls1_3") == 0
    assert handshake(site, "-tls1_1") != 0


def handshake(site: Site, version: str) -> int:
    return subprocess.run(
        ["openssl", "s_client", "-connect", site.https.removeprefix("https://"), version,
         "-cipher", "DEFAULT@SECLEVEL=0"],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=30, check=False,
    ).returncode  # fmt: skip


def test_http_redirects_except_acme_challenges(site: Site) -> None:
    with httpx.Client(timeout=10) as client:
        redirected = client.get(f"{site.http}/api/v1/vehicles?x=1")
        challenge = client.get(f"{site.http}/.well-known/acme-challenge/token123")
    assert redirected.status_code == 301
    assert redirected.headers["location"].startswith("https://")
    assert redirected.headers["location"].endswith("/api/v1/vehicles?x=1")
    assert challenge.status_code == 200
    assert challenge.text == "token123.key"


def test_request_id_is_echoed_or_generated_and_logged(site: Site) -> None:
    with site.client() as client:
        echoed = client.get(f"{site.https}/healthz", headers={"X-Request-ID": "abc-123.x"})
        generated = client.get(f"{site.https}/readyz")
        forged = client.get(f"{site.https}/healthz", headers={"X-Request-ID": "bad id"})
        static = client.get(f"{site.https}/", headers={"X-Request-ID": "static-1"})
    assert echoed.headers["x-request-id"] == "abc-123.x"
    made = generated.headers["x-request-id"]
    assert len(made) == 32
    assert int(made, 16) >= 0
    assert forged.headers["x-request-id"] != "bad id"
    assert static.headers["x-request-id"] == "static-1"
    assert [e["uri"] for e in logged(site, "abc-123.x")] == ["/healthz"]
    assert [e["uri"] for e in logged(site, made)] == ["/readyz"]


def test_web_ui_with_long_cached_hashed_assets(site: Site) -> None:
    with site.client() as client:
        index = client.get(f"{site.https}/")
        deep_link = client.get(f"{site.https}/vehicles/7")
        asset = client.get(f"{site.https}/{ASSET}")
        missing_asset = client.get(f"{site.https}/assets/gone.1.js")
        metrics = client.get(f"{site.https}/metrics")
    assert index.status_code == 200
    assert "obd2-dashboard" in index.text
    assert index.headers["cache-control"] == "no-cache"
    assert "frame-ancestors 'none'" in index.headers["content-security-policy"]
    assert deep_link.text == index.text
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert asset.headers["strict-transport-security"].startswith("max-age=")
    assert missing_asset.status_code == 404
    assert metrics.status_code == 404


def test_long_torque_query_passes_and_big_bodies_stop_at_2_mib(site: Site) -> None:
    query = "&".join(f"k{pid:x}={pid * 1.5}" for pid in range(0xFF1000, 0xFF1000 + 700))
    assert len(query) > 8000
    with site.client() as client:
        torque = client.get(f"{site.https}/api/v1/torque?session=1&{query}")
        too_big = client.post(f"{site.https}/api/v1/ingest", content=b"x" * (2 * 1024 * 1024 + 1))
    # Past nginx, whatever the API answers: not 414 (URI too long) nor 400 (header too large).
    assert torque.status_code not in {400, 414}
    assert torque.headers["x-request-id"]
    assert too_big.status_code == 413


def test_sse_events_arrive_while_the_stream_stays_open(site: Site) -> None:
    site.gate.release.clear()
    site.gate.finished.clear()
    with (
        site.client() as client,
        client.stream("GET", f"{site.https}/api/v1/streams/vehicles/1") as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        first = [next(lines) for _ in range(3)]
        # The upstream is still holding the response open: nginx passed the event on unbuffered.
        assert not site.gate.finished.is_set()
        assert first[0] == "id: 1"
        assert first[1] == "event: sample"
        assert json.loads(first[2].removeprefix("data: "))["value"] == 900
        site.gate.release.set()
        rest = list(lines)
    assert "id: 2" in rest
    assert site.gate.finished.is_set()


@pytest.mark.parametrize("path", ["/api/v1/streams/ws", "/api/v1/bridge/ws"])
def test_websocket_upgrades_and_carries_a_sample(site: Site, path: str) -> None:
    url = site.https.replace("https://", "wss://") + path
    sample = {"seq": 7, "ts": 1764000000000, "pid": "RPM", "value": 812.5}
    with connect(url, ssl=site.ssl_context, open_timeout=10) as websocket:
        assert websocket.response is not None
        assert websocket.response.status_code == 101
        websocket.send(json.dumps(sample))
        assert json.loads(websocket.recv(timeout=10)) == {"echo": sample}
