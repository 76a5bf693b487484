"""Log lines of a real server process, as an operator's journal would get them."""

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from obd2_dashboard.kit.logging import redact
from obd2_dashboard.settings import Settings
from tests.conftest import PASSWORD, World
from tests.serve_process import ServeProcess, Storage, serve_process


def _storage(settings: Settings) -> Storage:
    return Storage(
        "postgres" if settings.REDIS_URL else "sqlite",
        str(settings.DATABASE_URL),
        settings.REDIS_URL,
        settings.REDIS_KEY_PREFIX,
    )


@pytest.fixture
def server(settings: Settings, world: World, tmp_path: Path) -> Iterator[ServeProcess]:
    with serve_process(_storage(settings), tmp_path) as running:
        yield running


def _lines(stderr: str) -> list[dict[str, Any]]:
    entries = []
    for line in stderr.splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)  # every line is one JSON object
        assert isinstance(entry, dict), line
        assert "color_message" not in entry
        entries.append(entry)
    return entries


async def test_json_logs_carry_request_context_and_no_secrets(
    world: World, server: ServeProcess
) -> None:
    await world.user("alice@example.com")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        login = await client.post(
            "/api/v1/auth/login", json={"email": "alice@example.com", "password": PASSWORD}
        )
        assert login.status_code == 200
        csrf = login.json()["csrf_token"]
        client.headers["X-CSRF-Token"] = csrf
        vehicle = await client.post("/api/v1/vehicles", json={"name": "Car"})
        vehicle_id = vehicle.json()["id"]
        device = await client.post(f"/api/v1/vehicles/{vehicle_id}/devices", json={"name": "Pi"})
        assert device.status_code == 201
        token = device.json()["token"]
        missing = await client.get("/api/v1/vehicles/424242", headers={"X-Request-ID": "trace-1"})
        invalid = await client.post("/api/v1/vehicles", json={"name": PASSWORD, "extra": token})
        wrong = await client.post(
            "/api/v1/auth/login", json={"email": "alice@example.com", "password": "hunter2-x"}
        )
        session_cookie = client.cookies["obd2_session"]
        sample = {"seq": 1, "ts": int(time.time() * 1000), "pid": "RPM", "value": 900.0}
        stored = await client.post(
            "/api/v1/ingest",
            json={"samples": [sample]},
            headers={"Authorization": f"Bearer {token}"},
        )
        refused = await client.post(
            "/api/v1/ingest", json={"samples": [sample]}, headers={"Authorization": "Bearer x"}
        )
    stderr = server.stop()

    for secret in (PASSWORD, "hunter2-x", token, token[12:], session_cookie, csrf):
        assert secret not in stderr
    entries = _lines(stderr)
    requests = {e["request_id"]: e for e in entries if "route" in e}
    expected = [
        (login, "/api/v1/auth/login", 200),
        (vehicle, "/api/v1/vehicles", 201),
        (device, "/api/v1/vehicles/{vehicle_id}/devices", 201),
        (missing, "/api/v1/vehicles/{vehicle_id}", 404),
        (invalid, "/api/v1/vehicles", 422),
        (wrong, "/api/v1/auth/login", 401),
    ]
    for response, route, status in expected:
        assert response.status_code == status
        request_id = response.headers["x-request-id"]
        entry = requests[request_id]
        assert entry["route"] == route
        assert entry["status"] == status
        assert isinstance(entry["duration_ms"], int | float)
        assert entry["duration_ms"] >= 0
        assert entry["level"] == "info"
    assert missing.headers["x-request-id"] == "trace-1"
    # A fleet's successful uploads are counted in /metrics, not logged one line each at INFO.
    assert stored.status_code == 200
    assert stored.headers["x-request-id"] not in requests
    assert refused.status_code == 401
    assert requests[refused.headers["x-request-id"]]["level"] == "info"
    # Lines written while a request was served carry its id too.
    for entry in entries:
        if entry.get("logger") == "obd2_dashboard.http":
            assert entry.get("request_id")


@pytest.fixture
def debug_server(settings: Settings, world: World, tmp_path: Path) -> Iterator[ServeProcess]:
    """The server at LOG_LEVEL=DEBUG: every library's debug output lands in the journal too."""
    with serve_process(_storage(settings), tmp_path, LOG_LEVEL="DEBUG") as server:
        yield server


async def test_debug_logs_carry_no_credentials(world: World, debug_server: ServeProcess) -> None:
    """Every way a credential reaches the server, at DEBUG: none of them is written down."""
    await world.user("alice@example.com")
    url = debug_server.url
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        login = await client.post(
            "/api/v1/auth/login", json={"email": "alice@example.com", "password": PASSWORD}
        )
        assert login.status_code == 200
        csrf = login.json()["csrf_token"]
        client.headers["X-CSRF-Token"] = csrf
        session_cookie = client.cookies["obd2_session"]
        vehicle_id = (await client.post("/api/v1/vehicles", json={"name": "Car"})).json()["id"]
        device = await client.post(f"/api/v1/vehicles/{vehicle_id}/devices", json={"name": "Pi"})
        token = device.json()["token"]
        now = int(time.time() * 1000)
        sample = {"seq": 1, "ts": now, "pid": "RPM", "value": 800.0}
        bearer = {"Authorization": f"Bearer {token}"}
        ingest = await client.post("/api/v1/ingest", json={"samples": [sample]}, headers=bearer)
        assert ingest.status_code == 200
        torque = await client.get(
            "/api/v1/torque", params={"token": token, "session": "1", "time": str(now), "kc": "900"}
        )
        assert torque.text == "OK!"
        posted = await client.post(
            f"/api/v1/torque?token={token}", data={"session": "1", "time": str(now), "kd": "50"}
        )
        assert posted.text == "OK!"
        wrong = await client.get("/api/v1/torque", params={"token": token + "x", "kc": "1"})
        assert wrong.status_code == 401
        async with client.stream("GET", f"/api/v1/streams/vehicles/{vehicle_id}") as stream:
            assert stream.status_code == 200
    ws = "ws" + url.removeprefix("http")
    async with connect(f"{ws}/api/v1/bridge/ws", additional_headers=bearer) as bridge:
        await bridge.send(json.dumps({"type": "batch", "id": 1, "samples": [{**sample, "seq": 2}]}))
        assert json.loads(await bridge.recv())["type"] == "ack"
    cookie = {"Cookie": f"obd2_session={session_cookie}"}
    async with connect(f"{ws}/api/v1/streams/ws", additional_headers=cookie) as browser:
        await browser.send(json.dumps({"type": "subscribe", "vehicle_id": vehicle_id}))
        assert json.loads(await browser.recv())["type"] == "subscribed"
    stderr = debug_server.stop()

    assert '"level": "debug"' in stderr  # it did log at DEBUG
    secrets = {
        "password": PASSWORD,
        "session cookie": session_cookie,
        "session token": session_cookie.rpartition(".")[0],
        "csrf token": csrf,
        "device token": token,
        "device token's random part": token[12:],
    }
    leaked = {name: [line for line in stderr.splitlines() if value in line][:2]
              for name, value in secrets.items() if value in stderr}  # fmt: skip
    assert leaked == {}
    _lines(stderr)  # still one JSON object a line


@pytest.mark.parametrize(
    ("line", "kept"),
    [
        ("< authorization: Bearer obd2d_abc.DEF-123", "< authorization: Bearer [redacted]"),
        ("< Authorization: Basic dXNlcjpwYXNz", "< Authorization: Basic [redacted]"),
        ("< cookie: obd2_session=tok.3f2a; obd2_csrf=9a8b", "obd2_session=[redacted]"),
        ("< x-csrf-token: 9a8b7c", "< x-csrf-token: [redacted]"),
        ('"GET /api/v1/torque?session=1&token=obd2d_x&kc=9 HTTP/1.1"', "&token=[redacted]&kc=9"),
        ("WebSocket /api/v1/bridge/ws?token=abc", "?token=[redacted]"),
        ("device obd2d_" + "A" * 43 + " said hi", "device obd2d_[redacted] said hi"),
    ],
)
def test_credentials_are_redacted_from_log_lines(line: str, kept: str) -> None:
    assert kept in redact(line)
    assert "[redacted]" in redact(line)
