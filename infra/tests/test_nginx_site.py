"""infra/nginx/obd2-dashboard.conf in a real nginx on loopback ports (``stack.nginx``).

The site file is used as shipped except for its ports and paths. The upstream is the real API
(create_app on an embedded database) with a user, a vehicle and a device made for the test.
"""

import asyncio
import json
import re
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin

from infra.tests.conftest import tool
from obd2_dashboard.app import create_app
from obd2_dashboard.auth.service import create_user
from obd2_dashboard.devices.service import create_device_for
from obd2_dashboard.kit.db import make_engine, make_sessionmaker
from obd2_dashboard.kit.docs import DOCS_CONTENT_SECURITY_POLICY
from obd2_dashboard.models import Vehicle
from obd2_dashboard.ops.migrations import upgrade_head
from obd2_dashboard.ops.serve import KEEP_ALIVE_S
from obd2_dashboard.settings import Settings
from obd2_dashboard.web.endpoints import CONTENT_SECURITY_POLICY
from obd2_testkit.ports import free_port
from obd2_testkit.stack.nginx import (
    SHIPPED_NAME,
    SITE,
    NginxSite,
    Received,
    RecordingUpstream,
    serving,
    site_text,
)

ASSET = "assets/app.3f2a1b.js"
# The web UI's kinds of text files, long enough to be worth compressing.
COMPRESSIBLE = {
    "assets/app.51c0de.js": "export const gauges = [];\n" * 40,
    "assets/app.51c0de.css": ".gauge { color: var(--series); }\n" * 40,
    "favicon.svg": '<svg xmlns="http://www.w3.org/2000/svg"><circle r="1"/></svg>\n' * 20,
    "assets/pids.51c0de.json": '{"RPM": "engine speed"}\n' * 40,
}
# The policy the API serves the web UI with (and the browser tests run it under): behind nginx
# the same, so that a deployment does not loosen or break what the tests saw.
SITE_CONTENT_SECURITY_POLICY = CONTENT_SECURITY_POLICY


EMAIL, PASSWORD = "nginx@example.com", "correct horse battery"


@dataclass(frozen=True)
class Upstream:
    port: int
    vehicle_id: int
    token: str


async def seed(settings: Settings) -> tuple[int, str]:
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            user = await create_user(session, EMAIL, PASSWORD)
            vehicle = Vehicle(owner_id=user.id, name="Behind nginx")
            session.add(vehicle)
            await session.flush()
            device = await create_device_for(session, vehicle, "agent")
            await session.commit()
            return vehicle.id, device.token
    finally:
        await engine.dispose()


@dataclass
class Site:
    https: str
    http: str
    ssl_context: ssl.SSLContext
    access_log: Path
    upstream: Upstream

    @property
    def error_log(self) -> Path:
        return self.access_log.with_name("error.log")

    def client(self) -> httpx.Client:
        return httpx.Client(verify=self.ssl_context, timeout=10)

    def client_from(self, address: str) -> httpx.Client:
        """A client whose requests come from ``address`` (any of 127.0.0.0/8): nginx's
        per-address limits then count it apart from the other tests' clients."""
        transport = httpx.HTTPTransport(verify=self.ssl_context, local_address=address)
        return httpx.Client(transport=transport, timeout=30)


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    data = tmp_path_factory.mktemp("api")
    settings = Settings(DATA_DIR=data, BACKUP_DIR=data / "backups", SSE_HEARTBEAT_S=1)
    upgrade_head(settings.database_url)
    vehicle_id, token = asyncio.run(seed(settings))
    with serving(create_app(settings), "the API") as port:
        yield Upstream(port, vehicle_id, token)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> Iterator[Site]:
    base = tmp_path_factory.mktemp("nginx")
    dist, acme = base / "dist", base / "acme"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>obd2-dashboard</title>")
    (dist / ASSET).write_text("console.log('hashed');")
    for name, text in COMPRESSIBLE.items():
        (dist / name).write_text(text)
    (acme / ".well-known/acme-challenge").mkdir(parents=True)
    (acme / ".well-known/acme-challenge/token123").write_text("token123.key")
    nginx = NginxSite(base, [upstream.port], dist=dist, acme=acme, worker_connections=256)
    nginx.start()
    try:
        yield Site(nginx.https, nginx.http, nginx.ssl_context(), nginx.access_log, upstream)
    finally:
        nginx.stop()


@dataclass
class Recorded:
    """The site in front of an upstream that keeps every request's headers."""

    nginx: NginxSite
    upstream: RecordingUpstream


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    upstream = RecordingUpstream()
    with serving(upstream, "the recording upstream", lifespan="off") as port:
        nginx = NginxSite(tmp_path_factory.mktemp("nginx-recorded"), [port])
        nginx.start()
        try:
            yield Recorded(nginx, upstream)
        finally:
            nginx.stop()


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


def test_http_redirects_to_the_sites_own_name_except_acme_challenges(site: Site) -> None:
    with httpx.Client(timeout=10) as client:
        redirected = client.get(f"{site.http}/api/v1/vehicles?x=1")
        # Whatever name a request arrives with (this server is the only one on port 80 here),
        # the redirect goes to the site's: never to a host the client chose.
        bogus = client.get(f"{site.http}/login", headers={"Host": "attacker.example"})
        challenge = client.get(f"{site.http}/.well-known/acme-challenge/token123")
    assert redirected.status_code == 301
    assert redirected.headers["location"] == f"https://{SHIPPED_NAME}/api/v1/vehicles?x=1"
    assert bogus.status_code == 301
    assert bogus.headers["location"] == f"https://{SHIPPED_NAME}/login"
    assert challenge.status_code == 200
    assert challenge.text == "token123.key"


def test_the_port_80_file_alone_serves_challenges_before_there_is_a_certificate(
    tmp_path: Path,
) -> None:
    # The guide's first step: only obd2-dashboard-http.conf is enabled, certbot then gets the
    # certificate through it (webroot). It must stand alone: no certificate, no port-443 file.
    acme = tmp_path / "acme"
    (acme / ".well-known" / "acme-challenge").mkdir(parents=True)
    (acme / ".well-known" / "acme-challenge" / "token9").write_text("token9.key")
    nginx = NginxSite(tmp_path / "nginx", [free_port()], acme=acme, only_http=True).start()
    try:
        with httpx.Client(timeout=10) as client:
            challenge = client.get(f"{nginx.http}/.well-known/acme-challenge/token9")
            other = client.get(f"{nginx.http}/")
        assert challenge.status_code == 200
        assert challenge.text == "token9.key"
        assert other.status_code == 301
        assert other.headers["location"] == f"https://{SHIPPED_NAME}/"
        assert "ssl_certificate" not in nginx.base.joinpath("site.conf").read_text()
    finally:
        nginx.stop()


def test_no_answer_names_the_nginx_version(site: Site) -> None:
    with httpx.Client(timeout=10) as client:
        answers = [
            client.get(f"{site.http}/"),
            client.get(f"{site.http}/.well-known/acme-challenge/gone"),
        ]
    with site.client() as client:
        answers += [client.get(f"{site.https}/metrics"), client.get(f"{site.https}/assets/x.js")]
    assert [a.status_code for a in answers] == [301, 404, 404, 404]
    for answer in answers:
        assert answer.headers["server"] == "nginx"
        # nginx's own pages end in "<center>nginx/1.22.1</center>" with server_tokens on.
        assert "<center>nginx</center>" in answer.text
        assert "nginx/" not in answer.text


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


# What every answer of the site tells browsers, whichever location made it (nginx or the API).
BROWSER_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "strict-origin-when-cross-origin",
    "permissions-policy": "geolocation=(), camera=(), microphone=()",
    "content-security-policy": SITE_CONTENT_SECURITY_POLICY,
}
# Only over HTTPS: a browser ignores it over plain HTTP, where RFC 6797 forbids sending it.
HSTS = {"strict-transport-security": "max-age=63072000; includeSubDomains"}


def sent_once(response: httpx.Response, expected: dict[str, str]) -> dict[str, list[str]]:
    """The headers of ``expected`` whose values differ from it (each must come exactly once)."""
    return {
        name: response.headers.get_list(name)
        for name, value in expected.items()
        if response.headers.get_list(name) != [value]
    }


def test_every_location_sends_the_whole_set_of_security_headers(site: Site) -> None:
    """nginx drops every server-level add_header in a location that has one of its own: one
    request per location (and per kind of answer: the API's, nginx's own errors, files)."""
    vehicle = site.upstream.vehicle_id
    https = [
        ("GET", "/", 200),
        ("GET", f"/{ASSET}", 200),
        ("GET", "/assets/gone.1.js", 404),
        ("GET", "/api/v1/vehicles", 401),
        ("POST", "/api/v1/auth/login", 422),
        ("POST", "/api/v1/ingest", 422),
        ("GET", "/api/v1/torque", 401),
        ("GET", "/api/v1/torque/", 307),
        ("GET", "/healthz", 200),
        ("GET", "/readyz", 200),
        ("GET", "/metrics", 404),
        ("GET", f"/api/v1/streams/vehicles/{vehicle}", 401),
        ("GET", "/api/v1/streams/ws", 404),
        ("GET", "/api/v1/bridge/ws", 404),
    ]
    wrong = {}
    with site.client() as client:
        for method, path, status in https:
            response = client.request(method, f"{site.https}{path}", json={})
            assert response.status_code == status, (path, response.text)
            if mismatched := sent_once(response, BROWSER_HEADERS | HSTS):
                wrong[f"{method} {path}"] = mismatched
        # nginx's own refusal, before the API sees anything.
        too_big = client.post(f"{site.https}/api/v1/ingest", content=b"x" * (3 * 1024 * 1024))
        assert too_big.status_code == 413
        if mismatched := sent_once(too_big, BROWSER_HEADERS | HSTS):
            wrong["413"] = mismatched
    with httpx.Client(timeout=10) as client:
        for path, status in [
            ("/", 301), ("/.well-known/acme-challenge/token123", 200),
            ("/.well-known/acme-challenge/gone", 404),
        ]:  # fmt: skip
            response = client.get(f"{site.http}{path}")
            assert response.status_code == status, path
            if mismatched := sent_once(response, BROWSER_HEADERS):
                wrong[f"port 80 {path}"] = mismatched
            if "strict-transport-security" in response.headers:
                wrong[f"port 80 {path}"] = {"strict-transport-security": ["sent over HTTP"]}
    assert wrong == {}


def test_the_api_docs_page_keeps_its_own_content_security_policy(site: Site) -> None:
    """Its one inline script starts Swagger UI: with the site's policy as well (a browser
    enforces every policy it gets) the page would stay blank."""

    with site.client() as client:
        docs = client.get(f"{site.https}/api/v1/docs")
    assert docs.status_code == 200
    assert docs.headers.get_list("content-security-policy") == [DOCS_CONTENT_SECURITY_POLICY]
    assert sent_once(docs, HSTS) == {}


def test_hashed_assets_are_cached_for_a_year_but_a_missing_one_is_not(site: Site) -> None:
    with site.client() as client:
        asset = client.get(f"{site.https}/{ASSET}")
        revalidated = client.get(
            f"{site.https}/{ASSET}", headers={"If-Modified-Since": asset.headers["last-modified"]}
        )
        missing = client.get(f"{site.https}/assets/gone.2.js")
    assert (asset.status_code, revalidated.status_code, missing.status_code) == (200, 304, 404)
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert revalidated.headers["cache-control"] == "public, max-age=31536000, immutable"
    # A file missing now (a deploy under way, an old page) may be there at the next try.
    assert "cache-control" not in missing.headers


def test_the_web_uis_files_are_compressed_and_the_apis_answers_never(site: Site) -> None:
    gzip = {"Accept-Encoding": "gzip"}
    with site.client() as client:
        files = {name: client.get(f"{site.https}/{name}", headers=gzip) for name in COMPRESSIBLE}
        # BREACH: a compressed answer that holds a secret (the CSRF token, a device's token)
        # and text an attacker chose leaks the secret through its length.
        api = [
            client.get(f"{site.https}/api/v1/openapi.json", headers=gzip),
            client.post(
                f"{site.https}/api/v1/auth/login",
                json={"email": EMAIL, "password": PASSWORD}, headers=gzip,
            ),
            client.get(f"{site.https}/healthz", headers=gzip),
        ]  # fmt: skip
    for name, answer in files.items():
        assert answer.status_code == 200, name
        assert answer.headers.get("content-encoding") == "gzip", name
        assert answer.text == COMPRESSIBLE[name], name
        assert answer.headers["vary"] == "Accept-Encoding", name
    for answer in api:
        assert answer.status_code == 200, answer.url
        assert answer.headers["content-type"].startswith("application/json")
        assert "content-encoding" not in answer.headers, answer.url


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


def test_a_log_for_the_import_page_may_be_larger_than_an_ingest_batch(site: Site) -> None:
    log = b"time,RPM\n" + b"2026-12-01T10:00:00Z,800\n" * (3 * 1024 * 1024 // 25)
    assert len(log) > 2 * 1024 * 1024
    url = f"{site.https}/api/v1/vehicles/{site.upstream.vehicle_id}/imports"
    with site.client() as client:
        passed = client.post(url, content=log)
        too_big = client.post(url, content=b"x" * (64 * 1024 * 1024 + 1))
    # Past nginx to the API, which asks who is sending it (no session here).
    assert passed.status_code == 401, passed.text
    assert too_big.status_code == 413


def _ingest(site: Site, client: httpx.Client, seq: int) -> None:
    response = client.post(
        f"{site.https}/api/v1/ingest",
        json={"samples": [{"seq": seq, "ts": int(time.time() * 1000), "pid": "RPM",
                           "value": 900.0 + seq}]},
        headers={"Authorization": f"Bearer {site.upstream.token}"},
    )  # fmt: skip
    assert response.status_code == 200, response.text


@contextmanager
def _signed_in(site: Site) -> Iterator[httpx.Client]:
    with site.client() as client:
        login = client.post(
            f"{site.https}/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
        yield client


def test_sse_events_arrive_while_the_stream_stays_open(site: Site) -> None:
    url = f"{site.https}/api/v1/streams/vehicles/{site.upstream.vehicle_id}"
    with _signed_in(site) as client, client.stream("GET", url) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        assert next(lines) == ": connected"
        # The stream never ends by itself: each event can only have come through unbuffered.
        for seq in (1, 2):
            _ingest(site, client, seq)
            while next(lines) != "event: sample":
                pass
            assert json.loads(next(lines).removeprefix("data: "))["seq"] == seq


# Deadlines that only stop a hang: the upstream is an app in this test process, and while the
# whole-stack soak saturates both cores on the other worker it has answered an upgrade after
# more than 10 s (nginx itself waits up to 60 s for it).
HANDSHAKE_DEADLINE_S = 60


@contextmanager
def browser_websocket(
    https: str, ssl_context: ssl.SSLContext, path: str, headers: dict[str, str] | None = None
) -> Iterator[ClientConnection]:
    """A WebSocket as the site's own page opens it: to the site's name (Host and Origin both
    ``dashboard.example.com:<port>``), connected to nginx on loopback."""
    port = int(https.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=HANDSHAKE_DEADLINE_S)
    with connect(
        f"wss://{SHIPPED_NAME}:{port}{path}",
        sock=sock,
        ssl=ssl_context,
        server_hostname="127.0.0.1",
        origin=Origin(f"https://{SHIPPED_NAME}:{port}"),
        additional_headers=headers,
        open_timeout=HANDSHAKE_DEADLINE_S,
    ) as ws:
        yield ws


def test_browser_websocket_from_the_sites_own_page_is_accepted(site: Site) -> None:
    """The API refuses a WebSocket whose Origin is not its Host (a cookie-authenticated socket
    has no CORS): behind nginx it must see the Host the browser sent, not the upstream's name."""
    with _signed_in(site) as client:
        cookie = client.cookies["obd2_session"]
        headers = {"Cookie": f"obd2_session={cookie}"}
        with browser_websocket(site.https, site.ssl_context, "/api/v1/streams/ws", headers) as ws:
            ws.send(json.dumps({"type": "subscribe", "vehicle_id": site.upstream.vehicle_id}))
            assert json.loads(ws.recv(timeout=HANDSHAKE_DEADLINE_S))["type"] == "subscribed"


# What a client may claim about itself; nginx must replace it with what it saw.
FORGED = {
    "X-Forwarded-For": "198.51.100.7",
    "X-Real-IP": "198.51.100.7",
    "X-Forwarded-Proto": "http",
}


def assert_client_facts(received: Received, host: str, request_id: str) -> None:
    """What the API learns about the client from nginx, each header sent exactly once."""
    assert received.header("host") == host
    assert received.header("x-forwarded-for") == "127.0.0.1"
    assert received.header("x-real-ip") == "127.0.0.1"
    assert received.header("x-forwarded-proto") == "https"
    assert received.header("x-request-id") == request_id


def test_every_proxying_location_tells_the_upstream_about_the_client(recorded: Recorded) -> None:
    nginx, upstream = recorded.nginx, recorded.upstream
    port = nginx.https_port
    http_paths = [
        "/api/v1/vehicles", "/api/v1/auth/login", "/api/v1/ingest", "/api/v1/torque",
        "/api/v1/torque/", "/healthz", "/readyz", "/api/v1/streams/vehicles/1",
    ]  # fmt: skip
    with nginx.client() as client:
        for n, path in enumerate(http_paths):
            headers = {"Host": SHIPPED_NAME, "X-Request-ID": f"http-{n}", **FORGED}
            answer = client.get(f"{nginx.https}{path}", headers=headers)
            assert answer.json() == {"recorded": True}, path
            received = upstream.last(path)
            assert_client_facts(received, SHIPPED_NAME, f"http-{n}")
            # Nothing asks the upstream to close: nginx keeps its connections to the API open.
            assert received.values("connection") == [], path
            assert received.values("upgrade") == [], path
    for path in ("/api/v1/streams/ws", "/api/v1/bridge/ws"):
        request_id = f"ws-{path.split('/')[3]}"
        headers = {"X-Request-ID": request_id, **FORGED}
        with browser_websocket(nginx.https, nginx.ssl_context(), path, headers) as ws:
            ws.send("ping")
            assert ws.recv(timeout=HANDSHAKE_DEADLINE_S) == "ping"
        received = upstream.last(path)
        assert received.kind == "websocket"
        assert_client_facts(received, f"{SHIPPED_NAME}:{port}", request_id)
        assert received.header("connection").lower() == "upgrade"
        assert received.header("upgrade").lower() == "websocket"


def test_bridge_websocket_upgrades_and_acks_a_batch(site: Site) -> None:
    url = site.https.replace("https://", "wss://") + "/api/v1/bridge/ws"
    batch = {"type": "batch", "id": 1, "samples": [
        {"seq": 100, "ts": int(time.time() * 1000), "pid": "SPEED", "value": 42.0}]}  # fmt: skip
    headers = {"Authorization": f"Bearer {site.upstream.token}"}
    with connect(
        url, ssl=site.ssl_context, open_timeout=HANDSHAKE_DEADLINE_S, additional_headers=headers
    ) as ws:
        assert ws.response is not None
        assert ws.response.status_code == 101
        ws.send(json.dumps(batch))
        assert json.loads(ws.recv(timeout=HANDSHAKE_DEADLINE_S)) == {
            "type": "ack", "id": 1, "accepted": 1, "duplicates": 0,
        }  # fmt: skip


def test_browser_websocket_upgrades_and_carries_a_sample(site: Site) -> None:
    with _signed_in(site) as client:
        cookie = client.cookies["obd2_session"]
        url = site.https.replace("https://", "wss://") + "/api/v1/streams/ws"
        headers = {"Cookie": f"obd2_session={cookie}"}
        with connect(
            url, ssl=site.ssl_context, open_timeout=HANDSHAKE_DEADLINE_S, additional_headers=headers
        ) as ws:
            assert ws.response is not None
            assert ws.response.status_code == 101
            ws.send(json.dumps({"type": "subscribe", "vehicle_id": site.upstream.vehicle_id}))
            assert json.loads(ws.recv(timeout=HANDSHAKE_DEADLINE_S))["type"] == "subscribed"
            _ingest(site, client, 200)
            message = json.loads(ws.recv(timeout=HANDSHAKE_DEADLINE_S))
            assert (message["type"], message["seq"], message["value"]) == ("sample", 200, 1100.0)


def test_torque_token_stays_out_of_nginx_logs(site: Site) -> None:
    token = site.upstream.token
    query = {"token": token, "session": "1", "kc": "900"}
    with site.client() as client:
        sent = client.get(f"{site.https}/api/v1/torque", params=query)
        posted = client.post(f"{site.https}/api/v1/torque", params=query, data={"kd": "50"})
        # Refused by nginx itself, which writes such refusals to its error log with the request.
        too_big = client.post(
            f"{site.https}/api/v1/torque", params=query, content=b"k" * (2 * 1024 * 1024 + 1)
        )
    assert (sent.text, posted.text) == ("OK!", "OK!")
    assert too_big.status_code == 413
    lines = logged(site, sent.headers["x-request-id"])
    assert [e["uri"] for e in lines] == ["/api/v1/torque"]
    # No wait needed: nginx writes a refusal to its error log before it sends the 413, and the
    # 413 is in hand (this location logs only at crit, so there should be no such line at all).
    for log in (site.access_log, site.error_log):
        text = log.read_text()
        assert token not in text, log.name
        assert token[12:] not in text, log.name


def test_torque_tokens_stay_out_of_the_error_log_while_the_api_is_down(
    tmp_path: Path,
) -> None:
    """nginx writes the request line, query string and all, with each upstream error: every
    spelling of the Torque path must reach the location that keeps those lines out."""
    nginx = NginxSite(tmp_path, [free_port()]).start()  # nothing listens upstream
    try:
        with nginx.client() as client:
            paths = ["/api/v1/torque", "/api/v1/torque/", "/api/v1/torque/upload"]
            for n, path in enumerate(paths):
                down = client.get(f"{nginx.https}{path}", params={"token": f"SECRET{n}x", "kc": 1})
                assert down.status_code == 502, path
            # The same error elsewhere is logged with its query: the check below can see one.
            other = client.get(f"{nginx.https}/api/v1/vehicles", params={"token": "VISIBLE"})
            assert other.status_code == 502
    finally:
        nginx.stop()
    log = nginx.error_log.read_text()
    assert "token=VISIBLE" in log
    assert "SECRET" not in log


def test_forged_forwarded_for_does_not_escape_the_sign_in_limit(site: Site) -> None:
    """The API counts sign-in attempts per client address, which it learns from nginx's
    X-Forwarded-For: an address the client made up must not count instead of its own."""
    answers = []
    with site.client_from("127.0.0.2") as client:
        for n in range(21):  # LOGIN_MAX_ATTEMPTS_PER_IP is 20
            response = client.post(
                f"{site.https}/api/v1/auth/login",
                json={"email": f"nobody{n}@example.com", "password": "wrong password"},
                headers={"X-Forwarded-For": f"198.51.100.{n}", "X-Real-IP": f"198.51.100.{n}"},
            )
            answers.append(response.status_code)
    assert answers == [401] * 20 + [429]
    with site.client_from("127.0.0.3") as other:
        ok = other.post(
            f"{site.https}/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD}
        )
    assert ok.status_code == 200


def test_sign_in_floods_are_refused_by_nginx_while_other_routes_answer(site: Site) -> None:
    """Requests the API answers without counting them (a malformed body: 422) show nginx's own
    limit; a person meets the API's first, which says how long to wait (Retry-After)."""

    login = f"{site.https}/api/v1/auth/login"
    answers: list[int] = []
    with site.client_from("127.0.0.4") as client:
        while len(answers) < 200 and 429 not in answers:
            answers.append(client.post(login, json={"email": "flood"}).status_code)
        refused = client.post(login, json={"email": "flood"})
        health = client.get(f"{site.https}/healthz")
        me = client.get(f"{site.https}/api/v1/auth/me")
    assert 429 in answers, f"{len(answers)} sign-in requests in a row, none refused"
    allowed = answers.index(429)
    assert set(answers[:allowed]) == {422}
    assert allowed > Settings().LOGIN_MAX_ATTEMPTS_PER_IP
    # nginx's answer, not the API's (which is JSON and names a wait).
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("text/html")
    assert sent_once(refused, BROWSER_HEADERS | HSTS) == {}
    assert (health.status_code, me.status_code) == (200, 401)
    with site.client_from("127.0.0.5") as other:
        signed_in = other.post(login, json={"email": EMAIL, "password": PASSWORD})
    assert signed_in.status_code == 200


# limit_conn obd2_live_streams in the site: open streams (SSE or WebSocket) per client address.
LIVE_STREAMS_PER_ADDRESS = 128


def open_socket_status(nginx: NginxSite, path: str, source: str, stack: ExitStack) -> int:
    """Opens a WebSocket through nginx from ``source`` (raw: no thread per socket), keeps it
    open until ``stack`` closes, and returns the handshake's status."""
    sock = socket.create_connection(
        ("127.0.0.1", nginx.https_port), timeout=HANDSHAKE_DEADLINE_S, source_address=(source, 0)
    )
    tls = stack.enter_context(nginx.ssl_context().wrap_socket(sock, server_hostname="127.0.0.1"))
    tls.sendall(
        f"GET {path} HTTP/1.1\r\nHost: {SHIPPED_NAME}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = tls.recv(4096)
        assert chunk, "nginx closed the connection before answering"
        head += chunk
    return int(head.split(b" ", 2)[1])


def test_open_live_streams_per_address_are_limited(recorded: Recorded) -> None:
    nginx, path = recorded.nginx, "/api/v1/streams/ws"
    with ExitStack() as held:
        statuses = [
            open_socket_status(nginx, path, "127.0.0.6", held)
            for _ in range(LIVE_STREAMS_PER_ADDRESS + 1)
        ]
        assert statuses == [101] * LIVE_STREAMS_PER_ADDRESS + [429]
        with ExitStack() as other:
            assert open_socket_status(nginx, path, "127.0.0.7", other) == 101
    # Once they are closed, the address may open streams again (nginx counts what is open).
    deadline = time.monotonic() + 30
    while True:
        with ExitStack() as again:
            if open_socket_status(nginx, path, "127.0.0.6", again) == 101:
                break
        assert time.monotonic() < deadline, "the closed streams still count"
        time.sleep(0.05)


@dataclass
class Block:
    """A block of an nginx file (``server``, ``location = /healthz``): its own directives, each
    with its spaces squeezed, and the blocks inside it."""

    header: str
    directives: list[str]
    blocks: list["Block"]


def parse_blocks(text: str) -> Block:
    root = Block("", [], [])
    stack = [root]
    statement, quote, comment = "", "", False
    for char in text:
        if comment:
            comment = char != "\n"
        elif quote:
            statement += char
            quote = "" if char == quote else quote
        elif char == "#":
            comment = True
        elif char in "'\"":
            statement += char
            quote = char
        elif char == "{":
            block = Block(" ".join(statement.split()), [], [])
            stack[-1].blocks.append(block)
            stack.append(block)
            statement = ""
        elif char == "}":
            stack.pop()
            statement = ""
        elif char == ";":
            stack[-1].directives.append(" ".join(statement.split()) + ";")
            statement = ""
        else:
            statement += char
    return root


def test_every_location_includes_the_header_snippets() -> None:
    """A guard for locations added later: the requests above cover only the ones there are."""
    servers = [b for b in parse_blocks(site_text()).blocks if b.header == "server"]
    assert len(servers) == 2
    locations = 0
    for server in servers:
        https = "listen 443 ssl http2;" in server.directives
        snippet = "security-headers" if https else "browser-headers"
        assert f"include snippets/obd2-dashboard-{snippet}.conf;" in server.directives
        for location in server.blocks:
            locations += 1
            wanted = f"include snippets/obd2-dashboard-{snippet}.conf;"
            assert wanted in location.directives, location.header
            if any(d.startswith("proxy_pass ") for d in location.directives):
                proxy = "include snippets/obd2-dashboard-proxy.conf;"
                assert proxy in location.directives, location.header
    assert locations >= 10


def test_nginx_lets_go_of_idle_api_connections_before_the_api_closes_them() -> None:
    site = SITE.read_text()
    upstream = site[site.index("upstream obd2_dashboard_api {") :].split("}", 1)[0]
    timeout = re.search(r"keepalive_timeout (\d+)s;", upstream)
    assert timeout is not None, "the upstream sets no keepalive_timeout"
    assert int(timeout.group(1)) < KEEP_ALIVE_S


# What Mozilla's "intermediate" profile offers (ssl-config.mozilla.org, version 5.7), for the
# ECDSA certificates certbot makes by default, in testssl.sh's (IANA) names.
MOZILLA_INTERMEDIATE_ECDSA = {
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
}
# Findings about the test's own self-signed, two-day certificate (chain, expiry, revocation) and
# DNS: an operator's Let's Encrypt certificate and zone answer for these, not the site file.
NOT_THE_SITE_FILES = ("cert", "DNS_CAArecord")


def test_an_audit_with_testssl_finds_mozilla_intermediate_and_nothing_weak(
    site: Site, tmp_path: Path
) -> None:
    """Debian's testssl.sh as an auditor runs it: protocols, each cipher per protocol, forward
    secrecy, the server's defaults, the headers and the known attacks. Its target is an API
    answer, the kind that carries secrets (BREACH is about those; the static web UI is
    compressed on purpose)."""
    report = tmp_path / "testssl.json"
    result = subprocess.run(
        [tool("testssl"), "--quiet", "--color", "0", "--warnings", "off", "--sneaky",
         "--connect-timeout", "30", "--openssl-timeout", "30", "--jsonfile", str(report),
         "--protocols", "--cipher-per-proto", "--fs", "--server-defaults", "--headers",
         "--vulnerable", f"{site.https}/api/v1/auth/me"],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert report.exists(), result.stdout[-3000:] + result.stderr[-3000:]
    findings = {f["id"]: f for f in json.loads(report.read_text())}

    def finding(name: str) -> str:
        return str(findings[name]["finding"])

    for old in ("SSLv2", "SSLv3", "TLS1", "TLS1_1"):
        assert finding(old) == "not offered", (old, findings[old])
    assert finding("TLS1_2") == "offered"
    assert finding("TLS1_3").startswith("offered")
    offered = {
        str(f["finding"]).split()[-1] for name, f in findings.items() if name.startswith("cipher-")
    }
    assert offered == MOZILLA_INTERMEDIATE_ECDSA
    assert set(finding("PFS_ECDHE_curves").split()) == {"X25519", "prime256v1", "secp384r1"}
    assert findings["HSTS_time"]["severity"] == "OK"
    assert finding("BREACH").startswith("not vulnerable"), findings["BREACH"]
    weak = {
        name: f"{f['severity']}: {f['finding']}"
        for name, f in findings.items()
        # WARN is a check testssl.sh could not finish (a slow connection on a loaded machine),
        # not a finding; the checks that matter are asserted one by one above.
        if f["severity"] in ("LOW", "MEDIUM", "HIGH", "CRITICAL")
        and not name.startswith(NOT_THE_SITE_FILES)
    }
    assert not weak, weak
