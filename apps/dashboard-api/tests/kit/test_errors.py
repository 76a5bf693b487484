"""Bad input on every write route: a 4xx with the JSON error shape, never a 5xx."""

import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI

from obd2_dashboard.settings import Settings
from tests.conftest import World

# (method, path template, a valid body or None when the route takes none)
WRITE_ROUTES = [
    ("POST", "/api/v1/auth/login", {"email": "alice@example.com", "password": "x" * 10}),
    ("POST", "/api/v1/auth/logout", None),
    ("POST", "/api/v1/vehicles", {"name": "Car"}),
    ("PATCH", "/api/v1/vehicles/{vehicle_id}", {"name": "Car"}),
    ("DELETE", "/api/v1/vehicles/{vehicle_id}", None),
    ("POST", "/api/v1/vehicles/{vehicle_id}/devices", {"name": "Pi"}),
    ("POST", "/api/v1/devices/{device_id}/revoke", None),
    ("POST", "/api/v1/vehicles/{vehicle_id}/shares", {"email": "bob@example.com"}),
    ("DELETE", "/api/v1/vehicles/{vehicle_id}/shares/{user_id}", None),
    ("DELETE", "/api/v1/vehicles/{vehicle_id}/invitations/{invitation_id}", None),
    ("POST", "/api/v1/invitations/{invitation_id}/accept", None),
    ("POST", "/api/v1/invitations/{invitation_id}/decline", None),
    ("POST", "/api/v1/vehicles/{vehicle_id}/dtcs/clear", {"confirm": True}),
    (
        "POST",
        "/api/v1/vehicles/{vehicle_id}/alert-rules",
        {"kind": "threshold", "pid": "RPM", "op": "above", "threshold": 6000, "duration_s": 5},
    ),
    ("PATCH", "/api/v1/vehicles/{vehicle_id}/alert-rules/{rule_id}", {"enabled": False}),
    ("DELETE", "/api/v1/vehicles/{vehicle_id}/alert-rules/{rule_id}", None),
    ("POST", "/api/v1/alerts/{alert_id}/acknowledge", None),
    # A log file as the body, not JSON: every bad body above is a file it cannot read (422).
    ("POST", "/api/v1/vehicles/{vehicle_id}/imports", "ts,RPM\n1749893400000,800\n"),
    ("PATCH", "/api/v1/me/preferences", {"unit_system": "imperial_us"}),
]
# Device-authenticated writes, with their own body limit: tests/telemetry and tests/torque.
DEVICE_WRITE_ROUTES = {("POST", "/api/v1/ingest"), ("POST", "/api/v1/torque")}
ROUTE_IDS = [f"{m} {p}" for m, p, _ in WRITE_ROUTES]
Headers = dict[bytes, bytes]
JSON: Headers = {b"Content-Type": b"application/json"}


def test_write_routes_cover_the_openapi_document(app: FastAPI) -> None:
    documented = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        if method in {"post", "put", "patch", "delete"}
    }
    assert documented == {(m, p) for m, p, _ in WRITE_ROUTES} | DEVICE_WRITE_ROUTES


def _bodies() -> Iterator[tuple[str, bytes, Headers]]:
    yield "malformed", b'{"name": ', JSON
    yield "trailing-garbage", b'{"name": "x"} xyz', JSON
    yield "not-utf8", b'{"name": "\xff\xfe\xfa"}', JSON
    yield (
        "lone-surrogate",
        b'{"name": "\\ud800", "email": "\\udfff@x.y", "password": "\\ud800"}',
        JSON,
    )
    yield (
        "nul-in-strings",
        json.dumps({"name": "a\x00b", "email": "a\x00@b.c", "password": "p\x00" * 5}).encode(),
        JSON,
    )
    yield "array", b"[]", JSON
    yield "string", b'"name"', JSON
    yield "null", b"null", JSON
    yield "number", b"12", JSON
    yield "wrong-types", b'{"name": 5, "vin": [], "email": 7, "password": {}}', JSON
    yield "unknown-fields", b'{"name": "x", "email": "a@b.c", "password": "p", "admin": true}', JSON
    yield "huge-float", b'{"name": 1e999, "email": -1e999, "password": 1e999}', JSON
    yield "huge-int", b'{"name": ' + b"9" * 5000 + b"}", JSON
    yield "nan", b'{"name": NaN, "password": Infinity}', JSON
    yield "deep", b"[" * 20000 + b"]" * 20000, JSON
    yield "empty", b"", JSON
    yield (
        "text-plain",
        b'{"name": "x", "email": "a@b.c", "password": "p"}',
        {b"Content-Type": b"text/plain"},
    )
    yield "form", b"name=x&email=a%40b.c", {b"Content-Type": b"application/x-www-form-urlencoded"}
    yield "no-type", b'{"name": "x"}', {}


BODIES = list(_bodies())
# JSON that Python's parser reads although it is not UTF-8 or has an odd charset parameter: a
# route may take it (it means what it says) but must never fail on it.
TOLERATED: list[tuple[str, bytes, Headers]] = [
    ("charset-garbage", b'{"name": "x"}', {b"Content-Type": b"application/json; charset=\xff"}),
    ("utf16-bom", b"\xff\xfe{\x00}\x00", JSON),
    (
        "utf16",
        '{"name": "x"}'.encode("utf-16"),
        {b"Content-Type": b"application/json; charset=utf-16"},
    ),
]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Every attempt here signs in: the limits must not be what answers.
    return settings.model_copy(
        update={"LOGIN_MAX_ATTEMPTS_PER_IP": 10_000, "LOGIN_MAX_ATTEMPTS_PER_ACCOUNT": 10_000}
    )


@pytest.fixture
async def ids(world: World, alice: httpx.AsyncClient) -> dict[str, int]:
    vehicle = (await alice.post("/api/v1/vehicles", json={"name": "Car"})).json()
    device = (
        await alice.post(f"/api/v1/vehicles/{vehicle['id']}/devices", json={"name": "Pi"})
    ).json()
    me = (await alice.get("/api/v1/auth/me")).json()
    return {
        "vehicle_id": vehicle["id"],
        "device_id": device["id"],
        "user_id": me["id"],
        "rule_id": 1,
        "alert_id": 1,
        "invitation_id": 1,
    }


def assert_error_shape(response: httpx.Response, *, context: object = None) -> None:
    assert 400 <= response.status_code < 500, (context, response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), context
    body = response.json()
    assert isinstance(body, dict), context
    assert isinstance(body.get("detail"), str), (context, body)
    assert body["detail"], context


@pytest.mark.parametrize(("method", "path", "_valid"), WRITE_ROUTES, ids=ROUTE_IDS)
async def test_bad_bodies_are_4xx(
    alice: httpx.AsyncClient,
    ids: dict[str, int],
    method: str,
    path: str,
    _valid: object,
) -> None:
    url = path.format(**ids)
    for name, content, headers in BODIES:
        if _valid is None and name in {"empty", "no-type", "form", "text-plain"}:
            continue  # a route without a body ignores one that is not JSON
        response = await alice.request(method, url, content=content, headers=headers)
        if _valid is None and response.is_success:
            continue  # the route takes no body and got what it needed from the path
        assert_error_shape(response, context=(method, path, name))
    assert (await alice.get("/healthz")).status_code == 200
    if path.endswith(("/logout", "/revoke")) or method == "DELETE":
        return  # the first bodiless request did what the route does
    assert (await alice.get("/api/v1/auth/me")).status_code == 200
    assert (await alice.get(f"/api/v1/vehicles/{ids['vehicle_id']}")).json()["name"] == "Car"


@pytest.mark.parametrize(("method", "path", "_valid"), WRITE_ROUTES, ids=ROUTE_IDS)
async def test_odd_but_readable_json_never_fails(
    alice: httpx.AsyncClient, ids: dict[str, int], method: str, path: str, _valid: object
) -> None:
    url = path.format(**ids)
    for name, content, headers in TOLERATED:
        response = await alice.request(method, url, content=content, headers=headers)
        assert response.status_code < 500, (method, path, name)
        if not response.is_success:
            assert_error_shape(response, context=(method, path, name))


BAD_IDS = [
    str(10**30),
    str(2**63),
    "-1",
    "0",
    "1.0",
    "x",
    "%00",
    "%F0%9F%9A%97",
    "1%00",
    "\uff11",  # a full-width one
    "1_0",
    "%FF",
    "%ED%A0%80",
]


@pytest.mark.parametrize(("method", "path", "valid"), WRITE_ROUTES[3:], ids=ROUTE_IDS[3:])
async def test_bad_path_ids_are_4xx(
    alice: httpx.AsyncClient, method: str, path: str, valid: object
) -> None:
    for value in BAD_IDS:
        url = path.replace("{vehicle_id}", value).replace("{device_id}", value)
        response = await alice.request(method, url, json=valid)
        assert_error_shape(response, context=(method, url))
        assert response.status_code in {404, 422}


async def test_unauthenticated_bad_input_is_still_4xx(client: httpx.AsyncClient) -> None:
    for method, path, _ in WRITE_ROUTES:
        url = path.format(
            vehicle_id=1, device_id=1, user_id=1, rule_id=1, alert_id=1, invitation_id=1
        )
        for name, content, headers in BODIES:
            response = await client.request(method, url, content=content, headers=headers)
            assert_error_shape(response, context=(method, path, name))


# A body announced too large is refused on every route. A streamed one is refused once read
# past the limit; a route without a body never reads one (so it cannot fill memory there).
OVERSIZED = [
    pytest.param(
        method,
        path,
        announced,
        id=f"{'content-length' if announced else 'chunked'}-{method} {path}",
    )
    for method, path, valid in WRITE_ROUTES
    for announced in (True, False)
    # Imports have a limit of their own (IMPORT_MAX_BODY_BYTES): tests/imports.
    if (announced or valid is not None) and not path.endswith("/imports")
]


@pytest.mark.parametrize(("method", "path", "announced"), OVERSIZED)
async def test_oversized_body_is_413(
    settings: Settings,
    alice: httpx.AsyncClient,
    ids: dict[str, int],
    method: str,
    path: str,
    announced: bool,
) -> None:
    limit = settings.API_MAX_BODY_BYTES
    body = json.dumps({"name": "x" * (limit + 10)}).encode()
    url = path.format(**ids)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    content: bytes | AsyncIterator[bytes] = body if announced else chunks()
    response = await alice.request(method, url, content=content, headers=JSON)
    assert response.status_code == 413, response.text
    assert response.json() == {"detail": f"request body is larger than {limit} bytes"}
    # nothing was changed and the server still answers
    assert (await alice.get(f"/api/v1/vehicles/{ids['vehicle_id']}")).status_code == 200
    assert len((await alice.get("/api/v1/vehicles")).json()) == 1
    devices = (await alice.get(f"/api/v1/vehicles/{ids['vehicle_id']}/devices")).json()
    assert [d["revoked_at"] for d in devices] == [None]
    assert (await alice.get("/api/v1/auth/me")).status_code == 200


async def test_body_that_is_not_utf8_is_422_like_malformed_json(alice: httpx.AsyncClient) -> None:
    # FastAPI itself answers 400, which no operation documents.
    for content in (b"\x03\xff", b'{"name": "\xff\xfe\xfa"}'):
        response = await alice.post("/api/v1/vehicles", content=content, headers=JSON)
        assert response.status_code == 422, response.text
        assert response.json()["detail"] == "invalid request: body: not UTF-8 encoded JSON"
        assert response.json()["errors"][0]["type"] == "json_invalid"


async def test_bad_content_length_is_4xx(alice: httpx.AsyncClient) -> None:
    for length in ("abc", "-1", "1" * 40):
        response = await alice.post(
            "/api/v1/vehicles",
            content=b'{"name": "x"}',
            headers={**JSON, b"Content-Length": length.encode()},
        )
        assert_error_shape(response, context=length)


async def test_nul_and_surrogates_in_login_are_401_or_422(
    world: World, client: httpx.AsyncClient
) -> None:
    await world.user("alice@example.com")
    for email in ("alice@example.com\x00", "\x00", "alice\ud800@example.com"):
        content = json.dumps({"email": email, "password": "whatever-it-is"}).encode()
        response = await client.post("/api/v1/auth/login", content=content, headers=JSON)
        assert_error_shape(response, context=email)
        assert response.status_code in {401, 422}
