import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

# uvicorn adds color_message (the message with ANSI colour codes) to its records: not ours to show.
_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "color_message",
}


# Credentials a log line can carry: headers that libraries print at DEBUG (websockets prints
# every request header of a WebSocket handshake), Torque's token in a query string, and anything
# shaped like a device token or one of our cookies wherever it appears.
_CREDENTIALS = (
    (re.compile(r"(?i)(authorization:\s*(?:bearer|basic)\s+)[^\s\"',;]+"), r"\1[redacted]"),
    (re.compile(r"(?i)(x-csrf-token:\s*)[^\s\"',;]+"), r"\1[redacted]"),
    (re.compile(r"(obd2_session|obd2_csrf)=[^\s\"',;&]+"), r"\1=[redacted]"),
    (re.compile(r"(?i)([?&]token=)[^\s\"'&#]+"), r"\1[redacted]"),
    (re.compile(r"\bobd2d_[A-Za-z0-9_-]{16,}"), "obd2d_[redacted]"),
)


def redact(text: str) -> str:
    for pattern, replacement in _CREDENTIALS:
        text = pattern.sub(replacement, text)
    return text


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str))


class ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(
            f"{k}={v}"
            for k, v in record.__dict__.items()
            if k not in _RESERVED and v is not None and k != "request_id"
        )
        rid = getattr(record, "request_id", None)
        head = f"{self.formatTime(record, '%H:%M:%S')} {record.levelname:<7} {record.name}"
        text = f"{head} [{rid or '-'}] {record.getMessage()}"
        if extras:
            text = f"{text} {extras}"
        if record.exc_info:
            text = f"{text}\n{self.formatException(record.exc_info)}"
        return redact(text)


def configure_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else ConsoleFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's own access log repeats what our request log says, without the request id.
    logging.getLogger("uvicorn.access").disabled = True
    # httpx logs every request's URL at INFO: an alert's webhook URL is a credential.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    # Every revision check says "Context impl …" at INFO: noise around a command's one line.
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
