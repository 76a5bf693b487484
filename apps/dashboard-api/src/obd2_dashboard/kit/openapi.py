"""The OpenAPI document FastAPI renders, made to say what the app really answers.

Two things FastAPI cannot know: errors that middleware and app-wide handlers send (413 from the
body limit, 503 when the database or the broker does not answer), and the bounds of integers
(its document model stores ``minimum``/``maximum`` as floats, so ``2**63 - 1`` would be
published as ``2**63``: our bounds stay within 2**53, where a float is exact, and are written
back as integers).
"""

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

Document = dict[str, Any]

ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}
_RETRY_AFTER = {
    "Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}
}
# Added to every operation under the prefix (status → description); writes also get 413.
_EVERYWHERE = {"503": "the database or the message broker is unavailable; retry after Retry-After"}
_BODY_TOO_LARGE = "request body over the limit (64 KiB; 2 MiB for device uploads)"
_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def _integer_bounds(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("type") == "integer":
            for key in _BOUNDS:
                value = node.get(key)
                if isinstance(value, float) and value.is_integer():
                    node[key] = int(value)
        for child in node.values():
            _integer_bounds(child)
    elif isinstance(node, list):
        for child in node:
            _integer_bounds(child)


def _error(description: str, *, retry_after: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": ERROR_REF}},
    }
    if retry_after:
        response["headers"] = _RETRY_AFTER
    return response


def _common_errors(document: Document, prefix: str) -> None:
    for path, operations in document.get("paths", {}).items():
        if not path.startswith(prefix):
            continue
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for status, description in _EVERYWHERE.items():
                responses.setdefault(status, _error(description, retry_after=True))
            if method != "get":
                responses.setdefault("413", _error(_BODY_TOO_LARGE))
            if "429" in responses:
                responses["429"].setdefault("headers", _RETRY_AFTER)


def complete_document(document: Document, prefix: str) -> Document:
    _integer_bounds(document)
    _common_errors(document, prefix)
    return document


def install_openapi(app: FastAPI, prefix: str) -> None:
    render: Callable[[], Document] = app.openapi

    def openapi() -> Document:
        if app.openapi_schema is None:
            app.openapi_schema = complete_document(render(), prefix)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
