"""ASGI middleware: request ids, access logs, request metrics and body limits."""

import json
import logging
import re
import time
import uuid
from collections.abc import Callable

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from obd2_dashboard.kit.logging import request_id_var

log = logging.getLogger("obd2_dashboard.http")

REQUEST_ID_HEADER = b"x-request-id"
_VALID_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
UNMATCHED_ROUTE = "<unmatched>"

HTTP_REQUESTS = Counter(
    "obd2_http_requests_total", "HTTP requests by route template", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "obd2_http_request_duration_seconds",
    "Time to the response headers, by route template",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
_UNTRACKED = frozenset({"/healthz", "/readyz", "/metrics"})
# Any token is a valid HTTP method: a label per method a client makes up would grow the metrics
# without bound, so the unknown ones share one label.
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _route_template(scope: Scope) -> str:
    """The matched route's template with its full prefix ("/api/v1/vehicles/{vehicle_id}").

    An included router's route knows only its own part of the path, so the prefix is what the
    request path has in front of that part once the parameters are filled in.
    """
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(template, str):
        return UNMATCHED_ROUTE
    path: str = scope["path"]
    try:
        rendered = template.format_map(scope.get("path_params", {}))
    except (KeyError, ValueError, IndexError):
        return template
    if path.endswith(rendered):
        return path[: len(path) - len(rendered)] + template
    return template


class RequestContextMiddleware:
    """Echoes or makes ``X-Request-ID``, logs one line a request, and records metrics.

    Requests to the ``quiet_paths`` that succeed are logged at DEBUG: a fleet's uploads would
    otherwise be most of the log (and of its writes), and the metrics count them all.
    """

    def __init__(self, app: ASGIApp, quiet_paths: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.quiet_paths = quiet_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(REQUEST_ID_HEADER)
        if incoming is not None and _VALID_REQUEST_ID.match(incoming):
            request_id = incoming.decode()
        else:
            request_id = uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k != REQUEST_ID_HEADER]
                headers.append((REQUEST_ID_HEADER, request_id.encode()))
                message["headers"] = headers
                if scope["type"] == "http":
                    self._observe(scope, status, time.perf_counter() - started)
            elif message["type"] == "websocket.accept":
                status = 101
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER, request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Starlette answers an unhandled error from outside every middleware, so that answer
            # would carry no X-Request-ID and this log line no status: answer it here instead.
            if scope["type"] != "http" or status:
                raise
            log.exception("unhandled error")
            await _send_json(send_with_id, 500, {"detail": "internal server error"})
        finally:
            duration_ms = round((time.perf_counter() - started) * 1000, 2)
            path = scope["path"]
            quiet = path in self.quiet_paths and 200 <= status < 300
            if path not in _UNTRACKED:
                log.log(
                    logging.DEBUG if quiet else logging.INFO,
                    "%s %s %s",
                    scope.get("method", "WS"),
                    path,
                    status,
                    extra={
                        "route": _route_template(scope),
                        "status": status,
                        "duration_ms": duration_ms,
                    },
                )
            request_id_var.reset(token)

    @staticmethod
    def _observe(scope: Scope, status: int, seconds: float) -> None:
        if scope["path"] in _UNTRACKED:
            return
        route = _route_template(scope)
        method = scope.get("method", "GET")
        if method not in _KNOWN_METHODS:
            method = "OTHER"
        HTTP_REQUESTS.labels(method, route, str(status)).inc()
        HTTP_LATENCY.labels(method, route).observe(seconds)


class ApiHeadersMiddleware:
    """``Cache-Control: no-store`` and ``X-Content-Type-Options: nosniff`` on every response to
    the paths ``applies_to`` accepts, whoever made it (errors of outer middleware included).

    API answers carry a user's data: no browser or proxy cache may keep them, and none may be
    read as anything but their declared type. The web UI's files keep their own cache headers.
    """

    def __init__(self, app: ASGIApp, applies_to: Callable[[str], bool]) -> None:
        self.app = app
        self.applies_to = applies_to

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.applies_to(scope["path"]):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() not in {b"cache-control", b"x-content-type-options"}
                ]
                headers += [
                    (b"cache-control", b"no-store"),
                    (b"x-content-type-options", b"nosniff"),
                ]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _BodyTooLargeError(Exception):
    pass


class BodyLimitMiddleware:
    """Answers 413 to a body over the limit for its path, whether announced or streamed."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await _send_too_large(send, limit)
            return
        received = 0
        too_large = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    too_large = True
                    raise _BodyTooLargeError
            return message

        async def replacing_send(message: Message) -> None:
            # Whatever the app answers to a body it could not finish reading (FastAPI says 400),
            # the client is told the real reason.
            if too_large:
                if message["type"] == "http.response.start":
                    await _send_too_large(send, limit)
                return
            await send(message)

        try:
            await self.app(scope, limited_receive, replacing_send)
        except _BodyTooLargeError:
            await _send_too_large(send, limit)


async def _send_too_large(send: Send, limit: int) -> None:
    detail = {"detail": f"request body is larger than {limit} bytes"}
    await _send_json(send, 413, detail, [(b"connection", b"close")])


async def _send_json(
    send: Send, status: int, content: object, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps(content).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def is_json_content_type(header: str | None) -> bool:
    """Whether a Content-Type says JSON: ``application/json``, with at most a UTF-8 charset.

    JSON is UTF-8 (RFC 8259); a body sent as anything else was not meant as JSON, however it
    happens to parse.
    """
    if header is None:
        return False
    media_type, *parameters = (part.strip().lower() for part in header.split(";"))
    if media_type != "application/json":
        return False
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip() != "charset" or value.strip().strip('"') not in {"utf-8", "utf8"}:
            return False
    return True
