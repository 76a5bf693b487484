"""schemathesis against the OpenAPI document of a real `obd2-dashboard serve`, every operation.

As a device (its token) and as a signed-in user (session cookie and CSRF header), on Postgres
and Redis: no 5xx, every answer (status code, content type, headers, body) is one the document
describes, and data the schema forbids is refused. Examples per operation are bounded so the
module stays well under two minutes on two cores.
"""

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.schemas import BaseSchema
from sqlalchemy.ext.asyncio import AsyncSession

from obd2_dashboard.app import create_app
from obd2_dashboard.auth.service import create_user
from obd2_dashboard.models import Vehicle
from obd2_dashboard.settings import Settings
from tests.conftest import PASSWORD, SESSION_SECRET
from tests.serve_process import ServeProcess, fresh_storage, serve_process

pytestmark = pytest.mark.xdist_group("openapi-fuzz")

MAX_EXAMPLES = 12
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
]
DOCUMENT = create_app(
    Settings(SESSION_SECRET=SESSION_SECRET, DATABASE_URL="sqlite://", REDIS_URL=None)
).openapi()
OPERATIONS = [(m.upper(), p) for p, ops in DOCUMENT["paths"].items() for m in ops]


def _destructive(method: str, path: str) -> bool:
    # They end the session or take away what the other operations read: they run last.
    return method == "DELETE" or path.endswith(("/auth/logout", "/revoke"))


RUNS = [
    *(pytest.param("device", m, p, id=f"device {m} {p}") for m, p in OPERATIONS),
    *(
        pytest.param("user", m, p, id=f"user {m} {p}")
        for m, p in OPERATIONS
        if not _destructive(m, p)
    ),
    *(pytest.param("user", m, p, id=f"user {m} {p}") for m, p in OPERATIONS if _destructive(m, p)),
]


@dataclass(frozen=True, slots=True)
class Api:
    server: ServeProcess
    schema: BaseSchema
    cookie: str
    csrf: str
    token: str


async def _seed(session: AsyncSession) -> None:
    alice = await create_user(session, "alice@example.com", PASSWORD)
    bob = await create_user(session, "bob@example.com", PASSWORD)
    session.add(Vehicle(owner_id=alice.id, name="Alice's car", vin="WVWZZZ1JZXW000001"))
    await session.flush()
    session.add(Vehicle(owner_id=bob.id, name="Bob's car"))


def _furnish(client: httpx.Client) -> str:
    """Alice's car gets a device, samples, a rule and a viewer: reads have real rows to return."""
    login = client.post(
        "/api/v1/auth/login", json={"email": "alice@example.com", "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    client.headers["X-CSRF-Token"] = login.json()["csrf_token"]
    vid = client.get("/api/v1/vehicles").json()[0]["id"]
    token: str = client.post(f"/api/v1/vehicles/{vid}/devices", json={"name": "Pi"}).json()["token"]
    now = int(time.time() * 1000)
    samples = [
        {"seq": n, "ts": now - 60_000 + n * 100, "pid": pid, "value": float(n)}
        for n, pid in enumerate(["RPM", "SPEED", "COOLANT_TEMP"] * 20)
    ]
    ingest = client.post(
        "/api/v1/ingest", json={"samples": samples}, headers={"Authorization": f"Bearer {token}"}
    )
    assert ingest.status_code == 200, ingest.text
    rule = {"name": "Hot", "kind": "threshold", "pid": "COOLANT_TEMP", "op": "above",
            "threshold": 5, "duration_s": 0}  # fmt: skip
    assert client.post(f"/api/v1/vehicles/{vid}/alert-rules", json=rule).status_code == 201
    share = client.post(f"/api/v1/vehicles/{vid}/shares", json={"email": "bob@example.com"})
    assert share.status_code == 202, share.text
    return token


def _tuples_as_items(node: Any) -> Any:
    """The document with each tuple (``prefixItems``) checked position-blind, as ``anyOf``.

    schemathesis 4.32.5 rewrites ``prefixItems`` to Draft 4's ``items: [...]`` in response
    schemas and then rejects the result under the 3.1 meta-schema (schemathesis#3842, #4099),
    failing any 200 whose body holds a tuple. Length and element types are still checked.
    """
    if isinstance(node, list):
        return [_tuples_as_items(child) for child in node]
    if not isinstance(node, dict):
        return node
    rewritten = {key: _tuples_as_items(value) for key, value in node.items()}
    if "prefixItems" in rewritten and "items" not in rewritten:
        rewritten["items"] = {"anyOf": rewritten.pop("prefixItems")}
    return rewritten


# What generated rules may name as their webhook: addresses the server refuses without a name
# lookup. A generated URL (format "uri") would have the server ask the real DNS about made-up
# names when the rule is saved, and no test may reach past loopback.
GENERATED_WEBHOOKS = ["http://127.0.0.1:9/hook", "https://[::1]/hook", "http://0x7f.1/"]


def _webhooks_without_lookups(document: dict[str, Any]) -> dict[str, Any]:
    schemas = document["components"]["schemas"]
    for name in ("AlertRuleCreate", "AlertRuleUpdate"):
        schemas[name]["properties"]["webhook_url"] = {
            "anyOf": [{"type": "string", "enum": GENERATED_WEBHOOKS}, {"type": "null"}]
        }
    return document


def _config(url: str) -> Any:
    return schemathesis.Config.from_dict(
        {
            "base-url": url,
            "request-timeout": 30,
            # The credentials are ours to send, not parameters to vary.
            "generation": {"with-security-parameters": False},
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
        }
    )


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    tmp = tmp_path_factory.mktemp("openapi")
    with fresh_storage("postgres", tmp) as storage:
        storage.run(_seed)
        with serve_process(storage, tmp) as server:
            with httpx.Client(base_url=server.url, timeout=30) as client:
                token = _furnish(client)
                cookie, csrf = client.cookies["obd2_session"], client.headers["X-CSRF-Token"]
                document = client.get("/api/v1/openapi.json").json()
            schema = schemathesis.openapi.from_dict(
                _tuples_as_items(_webhooks_without_lookups(document)), config=_config(server.url)
            )
            yield Api(server, schema, cookie, csrf, token)
            log = server.stop()
    # A 5xx is caught by the checks; an error no client saw (a stream broken after its
    # headers, a failed background task) only by the log.
    assert '"level": "error"' not in log, log[-5000:]


def _credentials(api: Api, who: str, path: str) -> dict[str, Any]:
    if who == "user":
        return {"headers": {"X-CSRF-Token": api.csrf}, "cookies": {"obd2_session": api.cookie}}
    credentials: dict[str, Any] = {"headers": {"Authorization": f"Bearer {api.token}"}}
    if path.endswith("/torque"):
        credentials["query"] = {"token": api.token}  # Torque cannot send headers
    return credentials


def _call_and_validate(case: Case[Any]) -> None:
    responses = case.operation.definition.raw["responses"]
    if "text/event-stream" in responses.get("200", {}).get("content", {}):
        case.validate_response(_first_event(case))
        return
    case.call_and_validate()


def _first_event(case: Case[Any]) -> httpx.Response:
    """The answer to a live stream request, cut after its first event (it never ends)."""
    sent = case.as_transport_kwargs()
    with (
        httpx.Client(timeout=30, cookies=sent.get("cookies")) as client,
        client.stream(
            sent["method"], sent["url"], headers=sent.get("headers"), params=sent.get("params")
        ) as response,
    ):
        body = next(response.iter_raw()) if response.status_code == 200 else response.read()
    cut = httpx.Response(
        response.status_code, headers=response.headers, content=body, request=response.request
    )
    cut.elapsed = response.elapsed
    return cut


@pytest.mark.parametrize(("who", "method", "path"), RUNS)
def test_generated_requests_get_documented_answers(
    api: Api, who: str, method: str, path: str
) -> None:
    operation = api.schema[path][method]
    credentials = _credentials(api, who, path)
    strategies = [
        operation.as_strategy(generation_mode=mode, **credentials)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    ]
    # An operation without parameters or body has no negative form: only positive cases.
    has_inputs = bool(operation.definition.raw.get("parameters")) or (
        "requestBody" in operation.definition.raw
    )

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=st.one_of(strategies) if has_inputs else strategies[0])
    def run(case: Case[Any]) -> None:
        _call_and_validate(case)

    run()


def test_history_with_points_matches_its_document(api: Api) -> None:
    """A history answer that holds tuples, validated every run rather than when drawn.

    On a car of its own: the generated requests may have signed Alice out or deleted hers.
    """
    path = "/api/v1/vehicles/{vehicle_id}/samples"
    with httpx.Client(base_url=api.server.url, timeout=30) as client:
        login = client.post(
            "/api/v1/auth/login", json={"email": "bob@example.com", "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
        client.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        car = client.post("/api/v1/vehicles", json={"name": "History car"})
        assert car.status_code == 201, car.text
        vid = car.json()["id"]
        device = client.post(f"/api/v1/vehicles/{vid}/devices", json={"name": "Pi"})
        token = device.json()["token"]
        now = int(time.time() * 1000)
        samples = [{"seq": n, "ts": now - 60_000 + n * 100, "pid": "RPM", "value": float(n)}
                   for n in range(50)]  # fmt: skip
        stored = client.post(
            "/api/v1/ingest",
            json={"samples": samples},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert stored.status_code == 200, stored.text
        window: dict[str, str | int] = {"pid": "RPM", "from": now - 3_600_000, "to": now + 60_000}
        answer = client.get(f"/api/v1/vehicles/{vid}/samples", params=window)
    assert answer.status_code == 200, answer.text
    assert answer.json()["points"], "the stored RPM samples should give points"
    api.schema[path]["GET"].validate_response(answer)
