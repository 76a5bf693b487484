import logging
from typing import Any

import redis.exceptions
import sqlalchemy.exc
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError, WebSocketRequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from obd2_dashboard.kit.broker import BrokerUnavailableError

log = logging.getLogger("obd2_dashboard.errors")


class ServiceUnavailableError(Exception):
    """A dependency the request needs is down: 503 with Retry-After."""

    def __init__(self, detail: str, retry_after_s: int = 5) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after_s = retry_after_s


def printable(text: object) -> str:
    """Text that encodes as UTF-8 whatever the client sent (lone surrogates become escapes)."""
    return str(text).encode("utf-8", "backslashreplace").decode("utf-8")


def _error_items(errors: Any) -> list[dict[str, Any]]:
    items = []
    for err in errors:
        loc = [p if isinstance(p, int) else printable(p) for p in err.get("loc", ())]
        items.append(
            {
                "loc": loc,
                "msg": printable(err.get("msg", "")),
                "type": printable(err.get("type", "")),
            }
        )
    return items


# What FastAPI answers, with a 400, to a body it cannot even decode (bytes that are not UTF-8).
_UNDECODABLE_BODY = "There was an error parsing the body"


def _invalid(items: list[dict[str, Any]]) -> JSONResponse:
    first = items[0] if items else None
    where = ".".join(str(p) for p in first["loc"]) if first else "request"
    message = f"invalid request: {where}: {first['msg']}" if first else "invalid request"
    return JSONResponse({"detail": message, "errors": items}, status_code=422)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return _invalid(_error_items(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == _UNDECODABLE_BODY:
            # To the client that is the same mistake as malformed JSON, which is a 422.
            item = {"loc": ["body"], "msg": "not UTF-8 encoded JSON", "type": "json_invalid"}
            return _invalid([item])
        detail = printable(exc.detail) if isinstance(exc.detail, str) else "request failed"
        return JSONResponse(
            {"detail": detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(ServiceUnavailableError)
    async def _unavailable(_request: Request, exc: ServiceUnavailableError) -> JSONResponse:
        return JSONResponse(
            {"detail": exc.detail},
            status_code=503,
            headers={"Retry-After": str(exc.retry_after_s)},
        )

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return JSONResponse({"detail": "internal server error"}, status_code=500)


__all__ = [
    "HTTPException",
    "ServiceUnavailableError",
    "WebSocketRequestValidationError",
    "install_error_handlers",
]


def install_database_error_handlers(app: FastAPI) -> None:
    """A database or broker that does not answer is a 503 to retry, not a 500."""

    async def _broker_down(_request: Request, exc: Exception) -> JSONResponse:
        log.warning("broker unavailable: %s", type(exc).__name__)
        return JSONResponse(
            {"detail": "the message broker is unavailable; retry shortly"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    for broker_exc in (
        redis.exceptions.ConnectionError,
        redis.exceptions.TimeoutError,
        BrokerUnavailableError,
    ):
        app.add_exception_handler(broker_exc, _broker_down)

    async def _db_down(_request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %s", type(exc).__name__)
        return JSONResponse(
            {"detail": "the database is unavailable; retry shortly"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    for exc_type in (
        sqlalchemy.exc.OperationalError,
        sqlalchemy.exc.InterfaceError,
        sqlalchemy.exc.TimeoutError,
        ConnectionError,
        TimeoutError,
    ):
        app.add_exception_handler(exc_type, _db_down)
