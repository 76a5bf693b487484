"""The app as its OpenAPI document describes it, and generated input thrown at every operation."""

import json
import string
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from obd2_dashboard.app import create_app
from obd2_dashboard.pids.definitions import NAME_PATTERN
from obd2_dashboard.settings import Settings
from obd2_protocol import PIDS
from tests.conftest import SESSION_SECRET, World

Schema = dict[str, Any]

DOCUMENT: Schema = create_app(
    Settings(SESSION_SECRET=SESSION_SECRET, DATABASE_URL="sqlite://", REDIS_URL=None)
).openapi()


def _streams_forever(operation: dict[str, object]) -> bool:
    # An SSE stream never ends by itself: the in-process transport would wait for ever. Live
    # streams get their own tests (tests/live) and their bad inputs there.
    responses = operation.get("responses", {})
    assert isinstance(responses, dict)
    return "text/event-stream" in responses.get("200", {}).get("content", {})


OPERATIONS = [
    (method.upper(), path, operation)
    for path, operations in DOCUMENT["paths"].items()
    for method, operation in operations.items()
    if not _streams_forever(operation)
]
HEALTH_PATHS = {"/healthz", "/readyz", "/metrics"}
# Writes authenticated by something other than the session cookie: no CSRF to refuse.
NO_COOKIE_PATHS = {"/api/v1/auth/login", "/api/v1/ingest", "/api/v1/torque"}


# -- the document -----------------------------------------------------------------------------


async def test_document_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.json() == DOCUMENT


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    [o for o in OPERATIONS if o[1].startswith("/api/v1/")],
    ids=[f"{m} {p}" for m, p, _ in OPERATIONS if p.startswith("/api/v1/")],
)
def test_api_operations_document_their_errors(method: str, path: str, operation: Schema) -> None:
    responses = operation["responses"]
    if path != "/api/v1/auth/login":
        assert "401" in responses
    if operation.get("parameters") or "requestBody" in operation:
        assert "422" in responses
    if method != "GET" and path not in NO_COOKIE_PATHS:
        assert "403" in responses  # CSRF
    assert "503" in responses  # the database or the broker down
    if method != "GET":
        assert "413" in responses  # the body limit
    for code, response in responses.items():
        if code.startswith("4") or code == "503":
            content = response.get("content", {}).get("application/json", {})
            assert content["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}, code
        elif code != "204":
            schemas = [c.get("schema") for c in response.get("content", {}).values()]
            assert schemas, (code, "success without a content type")
            assert all(schemas), (code, "success without a schema")
    body = operation.get("requestBody")
    if body is not None:
        # JSON, or for an import the file itself under its media types: each with a schema.
        assert body["content"]
        assert all(media["schema"] for media in body["content"].values())


def _schemas(node: object) -> list[Schema]:
    if isinstance(node, dict):
        return [node, *(s for child in node.values() for s in _schemas(child))]
    if isinstance(node, list):
        return [s for child in node for s in _schemas(child)]
    return []


def test_integer_bounds_survive_a_reader_that_parses_floats() -> None:
    # FastAPI's document model keeps bounds as floats: 2**63 - 1 would be published as 2**63.
    bounds = [
        (schema[key], schema)
        for schema in _schemas(DOCUMENT)
        if schema.get("type") == "integer"
        for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
        if key in schema
    ]
    assert len(bounds) > 20
    for value, schema in bounds:
        assert type(value) is int, schema
        assert abs(value) <= 2**53, schema
        assert json.loads(json.dumps(float(value))) == value, schema


def test_pids_are_documented_as_the_known_table() -> None:
    sample = DOCUMENT["paths"]["/api/v1/ingest"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]["properties"]["samples"]["items"]["properties"]
    history = DOCUMENT["paths"]["/api/v1/vehicles/{vehicle_id}/samples"]["get"]["parameters"]
    rule = DOCUMENT["components"]["schemas"]["AlertRuleCreate"]["properties"]["pid"]["anyOf"][0]
    update = DOCUMENT["components"]["schemas"]["AlertRuleUpdate"]["properties"]["pid"]["anyOf"][0]
    for schema in (sample["pid"], rule, update):
        assert schema["enum"] == list(PIDS), schema
    # History takes the vehicle's own PIDs too (Torque's, imported ones): any name of the form.
    pid_query = next(p["schema"] for p in history if p["name"] == "pid")
    assert pid_query["pattern"] == NAME_PATTERN
    assert "enum" not in pid_query


def test_no_framework_error_shape_is_documented() -> None:
    # Every error this API sends is {"detail": str, ...}: FastAPI's default 422 shape is not it.
    assert "HTTPValidationError" not in DOCUMENT["components"]["schemas"]


# -- generated input --------------------------------------------------------------------------

ODD_CHARACTERS = st.sampled_from(["\x00", "\ud800", "\udfff", "\u202e", "\ufeff", "\x7f", "\n"])
TEXT = st.one_of(
    st.text(max_size=40),
    st.text(st.characters(codec=None, categories=None), max_size=20),  # surrogates included
    st.builds(
        lambda a, b, c: a + b + c, st.text(max_size=10), ODD_CHARACTERS, st.text(max_size=10)
    ),
    st.just("x" * 5000),
)
HUGE_INTS = st.sampled_from([10**30, -(10**30), 2**63, 2**63 - 1, -(2**63), 2**64, 0, -1])
NUMBERS = st.one_of(
    st.integers(), HUGE_INTS, st.floats(allow_nan=False), st.just(1e308), st.just(-1e308)
)
ANY_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), NUMBERS, TEXT),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(TEXT, children, max_size=4)
    ),
    max_leaves=12,
)


def _resolve(schema: Schema) -> Schema:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = DOCUMENT["components"]["schemas"][name]
    return schema


def _valid_text(schema: Schema) -> st.SearchStrategy[str]:
    if "pattern" in schema:
        pattern = st.from_regex(str(schema["pattern"]), fullmatch=True)
        if "maxLength" in schema:
            pattern = pattern.filter(lambda s: len(s) <= schema["maxLength"])
        return pattern
    return st.text(
        min_size=schema.get("minLength", 0), max_size=min(schema.get("maxLength", 50), 50)
    )


def from_schema(schema: Schema) -> st.SearchStrategy[Any]:
    """Values that mostly fit ``schema``, sometimes any JSON at all."""
    return st.one_of(_fitting(schema), _fitting(schema), _fitting(schema), ANY_JSON)


def _fitting(schema: Schema) -> st.SearchStrategy[Any]:
    schema = _resolve(schema)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([from_schema(s) for s in schema[key]])
    kind = schema.get("type")
    if kind == "string":
        return st.one_of(_valid_text(schema), TEXT)
    if kind == "integer":
        return st.one_of(
            st.integers(schema.get("minimum"), schema.get("maximum")), HUGE_INTS, NUMBERS
        )
    if kind == "number":
        return NUMBERS
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {})), max_size=5)
    if kind == "object":
        properties: Schema = schema.get("properties", {})
        required = set(schema.get("required", ()))
        return st.fixed_dictionaries(
            {name: from_schema(p) for name, p in properties.items() if name in required},
            optional={
                **{name: from_schema(p) for name, p in properties.items() if name not in required},
                "unknown_field": ANY_JSON,
            },
        )
    return ANY_JSON


def path_value(schema: Schema, known_ids: list[int]) -> st.SearchStrategy[str]:
    segment = st.text(alphabet=string.printable + "\u00e9\U0001f697\x00", min_size=1, max_size=30)
    values: list[st.SearchStrategy[str]] = [segment.map(lambda s: quote(s, safe=""))]
    if _resolve(schema).get("type") == "integer":
        values += [
            st.sampled_from(known_ids).map(str),
            st.integers(-10, 10**6).map(str),
            HUGE_INTS.map(str),
            st.sampled_from(["1.0", "1e3", "0x10", "%ff", "%ED%A0%80", "1%00", "\uff11"]),
        ]
    return st.one_of(values)


def request_for(
    operation: Schema, path: str, known_ids: list[int]
) -> st.SearchStrategy[tuple[str, dict[str, str], bytes | None, dict[str, str]]]:
    parameters = operation.get("parameters", [])
    path_params = {
        p["name"]: path_value(p["schema"], known_ids) for p in parameters if p["in"] == "path"
    }
    query = st.dictionaries(
        st.sampled_from([p["name"] for p in parameters if p["in"] == "query"] + ["x", "id"]),
        TEXT.map(lambda s: s.encode("utf-8", "surrogatepass").decode("latin-1")),
        max_size=3,
    )
    body: st.SearchStrategy[bytes | None] = st.none()
    if "requestBody" in operation:
        content = operation["requestBody"]["content"]
        if "application/json" in content:
            body = st.one_of(
                from_schema(content["application/json"]["schema"]).map(
                    lambda v: json.dumps(v, ensure_ascii=True).encode()
                ),
                st.binary(max_size=64),
            )
        else:  # a file as the body (an import): any bytes, text that looks like a log
            body = st.one_of(
                st.binary(max_size=256),
                TEXT.map(lambda s: ("ts,RPM\n" + s).encode("utf-8", "surrogatepass")),
            )
    content_type = st.sampled_from(
        ["application/json", "application/json", "text/plain", "application/merge-patch+json", ""]
    )

    def build(
        values: dict[str, str], q: dict[str, str], b: bytes | None, ct: str
    ) -> tuple[str, dict[str, str], bytes | None, dict[str, str]]:
        url = path
        for name, value in values.items():
            url = url.replace("{" + name + "}", value)
        return url, q, b, ({"Content-Type": ct} if ct and b is not None else {})

    return st.builds(build, st.fixed_dictionaries(path_params), query, body, content_type)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Generated sign-ins must reach the handler, not the rate limit.
    return settings.model_copy(
        update={"LOGIN_MAX_ATTEMPTS_PER_IP": 10**6, "LOGIN_MAX_ATTEMPTS_PER_ACCOUNT": 10**6}
    )


@pytest.fixture
async def known_ids(world: World, alice: httpx.AsyncClient) -> list[int]:
    vehicle = (await alice.post("/api/v1/vehicles", json={"name": "Car"})).json()["id"]
    device = (await alice.post(f"/api/v1/vehicles/{vehicle}/devices", json={"name": "Pi"})).json()
    return [vehicle, device["id"]]


@pytest.mark.parametrize(
    ("method", "path", "operation"), OPERATIONS, ids=[f"{m} {p}" for m, p, _ in OPERATIONS]
)
@hypothesis_settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_generated_requests_never_get_a_5xx(
    alice: httpx.AsyncClient,
    known_ids: list[int],
    method: str,
    path: str,
    operation: Schema,
    data: st.DataObject,
) -> None:
    url, query, body, headers = data.draw(request_for(operation, path, known_ids))
    response = await alice.request(method, url, params=query, content=body, headers=headers)
    assert response.status_code < 500, (method, url, body, response.text)
    if path in HEALTH_PATHS:
        assert response.status_code == 200
    elif response.status_code >= 400:
        error = response.json()
        assert isinstance(error, dict)
        assert isinstance(error.get("detail"), str)
