import logging
import secrets
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Self
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from obd2_dashboard.kit.outbound import IPNetwork, parse_networks
from obd2_dashboard.maps.tiles import (
    DEFAULT_MAP_TILE_ATTRIBUTION,
    DEFAULT_MAP_TILE_URL,
    check_tile_url,
)

MIN_SECRET_BYTES = 32


class Environment(StrEnum):
    development = "development"
    production = "production"


class LogFormat(StrEnum):
    json = "json"
    console = "console"


class SettingsError(Exception):
    """A setting that stops the process at start; the message names the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    OBD2_ENV: Environment = Environment.development
    DATABASE_URL: str | None = None
    REDIS_URL: str | None = None
    REDIS_KEY_PREFIX: str = "obd2:"
    SESSION_SECRET: str | None = None
    LOG_LEVEL: str = "INFO"
    LOG_FORMAT: LogFormat | None = None
    BACKUP_DIR: Path = Path("./var/backups")
    BACKUP_KEEP: Annotated[int, Field(ge=1)] = 14
    MQTT_URL: str | None = None
    DATA_DIR: Path = Path("./var")
    WEB_DIST: Path | None = None
    SESSION_MAX_AGE_S: Annotated[int, Field(ge=60)] = 14 * 24 * 3600
    INGEST_MAX_BODY_BYTES: Annotated[int, Field(ge=1024)] = 2 * 1024 * 1024
    API_MAX_BODY_BYTES: Annotated[int, Field(ge=1024)] = 64 * 1024
    # A log file uploaded for import (POST /api/v1/vehicles/{id}/imports); the CLI reads larger.
    IMPORT_MAX_BODY_BYTES: Annotated[int, Field(ge=1024)] = 64 * 1024 * 1024
    # Sign-in: every attempt from one address counts against LOGIN_MAX_ATTEMPTS_PER_IP in a
    # window. Failures are counted per (account, address): from the
    # LOGIN_MAX_ATTEMPTS_PER_ACCOUNT-th on, that address waits LOGIN_DELAY_S before its next
    # try, doubling up to LOGIN_MAX_DELAY_S.
    # Failures of an account from all addresses together slow down the same way from the
    # LOGIN_MAX_FAILURES_UNKNOWN-th on, but only for browsers and addresses that never signed in
    # to it: a stranger cannot lock the owner out. Counts are forgotten LOGIN_WINDOW_S after the
    # last delay ends, or at a successful sign-in.
    LOGIN_MAX_ATTEMPTS_PER_IP: Annotated[int, Field(ge=1)] = 20
    LOGIN_MAX_ATTEMPTS_PER_ACCOUNT: Annotated[int, Field(ge=1)] = 5
    LOGIN_MAX_FAILURES_UNKNOWN: Annotated[int, Field(ge=1)] = 50
    LOGIN_DELAY_S: Annotated[float, Field(gt=0, le=3600)] = 2.0
    LOGIN_MAX_DELAY_S: Annotated[float, Field(gt=0, le=86400)] = 900.0
    LOGIN_WINDOW_S: Annotated[int, Field(ge=1)] = 300
    # How long a browser or an address that signed in to an account is known to it.
    LOGIN_KNOWN_FOR_S: Annotated[int, Field(ge=60)] = 365 * 24 * 3600
    GIT_SHA: str | None = None
    # A client must send a request's headers within this long, or its connection is closed.
    HTTP_HEADER_TIMEOUT_S: Annotated[float, Field(gt=0, le=300)] = 10.0
    # An idle keep-alive connection is closed after this long: longer than nginx keeps an idle
    # upstream connection (keepalive_timeout, 60 s), or nginx could send a request on one as
    # the API closes it and answer that request (a POST is not retried) with a 502.
    HTTP_KEEP_ALIVE_S: Annotated[int, Field(ge=1, le=3600)] = 75
    SSE_HEARTBEAT_S: Annotated[float, Field(gt=0, le=15)] = 10.0
    # Open live streams re-check their viewer's session and right to the vehicle this often:
    # signing out or losing a share ends them within about this long.
    LIVE_ACCESS_RECHECK_S: Annotated[float, Field(gt=0, le=300)] = 15.0
    # Run the persistence worker inside the API process; unset: exactly when the broker is
    # embedded (its streams exist only in this process).
    EMBEDDED_WORKER: bool | None = None
    # A work entry held this long by a consumer that stopped answering is taken over.
    WORKER_CLAIM_IDLE_MS: Annotated[int, Field(ge=0)] = 30_000
    WORKER_SWEEP_AGE_S: Annotated[float, Field(ge=0)] = 15.0
    # A stored batch whose derived data fails is tried this many times in all, the second try
    # after WORKER_RETRY_BACKOFF_S and each next after twice as long, then dead-lettered.
    WORKER_MAX_ATTEMPTS: Annotated[int, Field(ge=1)] = 5
    WORKER_RETRY_BACKOFF_S: Annotated[float, Field(ge=0)] = 5.0
    # The worker's own /metrics (its counters) on 127.0.0.1; 0 turns it off.
    WORKER_METRICS_PORT: Annotated[int, Field(ge=0, le=65535)] = 9464
    # Raw samples older than this many days are deleted by the worker (rollups and trips stay);
    # unset keeps them forever.
    RETENTION_DAYS: Annotated[float | None, Field(gt=0)] = None
    RETENTION_INTERVAL_S: Annotated[float, Field(gt=0)] = 3600.0
    # A stretch this long with neither RPM > 0 nor SPEED > 0 ends a trip; shorter stops (a fuel
    # stop) stay inside it.
    TRIP_JOIN_GAP_S: Annotated[int, Field(ge=1, le=24 * 3600)] = 300
    # The map under a trip's GPS track: a tile URL template ({z}/{x}/{y}, optional {s}) and the
    # attribution its provider asks for. Empty: no tiles (the track on a plain background). The
    # web UI's Content-Security-Policy lets images come from this URL's origin.
    MAP_TILE_URL: str = DEFAULT_MAP_TILE_URL
    MAP_TILE_ATTRIBUTION: Annotated[str, Field(max_length=500)] = DEFAULT_MAP_TILE_ATTRIBUTION

    @field_validator("MAP_TILE_URL")
    @classmethod
    def _tile_template(cls, value: str) -> str:
        check_tile_url(value)  # refused at start (exit 2), saying what is wrong
        return value.strip()

    # The one state model (presence/state.py): a vehicle is live until this long passes without
    # an upload, then stale; offline after the second. Both above the 5 s that last_seen_at is
    # recorded to (telemetry.repository.LAST_SEEN_RESOLUTION).
    VEHICLE_STALE_AFTER_S: Annotated[float, Field(gt=5, le=24 * 3600)] = 15.0
    VEHICLE_OFFLINE_AFTER_S: Annotated[float, Field(gt=5, le=7 * 24 * 3600)] = 300.0
    # A device is silent after this long without an upload or a status report (the agent
    # reports every 10 s), or without an upload while its adapter says it is connected.
    DEVICE_SILENT_AFTER_S: Annotated[float, Field(gt=5, le=24 * 3600)] = 60.0

    @field_validator("DATABASE_URL", "REDIS_URL", "SESSION_SECRET", "MQTT_URL", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # `REDIS_URL=` in an environment file means "not set", not "a URL that is empty".
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("LOG_LEVEL")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in logging.getLevelNamesMapping():
            raise ValueError(f"{value!r} is not a level (DEBUG, INFO, WARNING, ERROR, CRITICAL)")
        return level

    @field_validator("DATABASE_URL")
    @classmethod
    def _supported_database(cls, value: str | None) -> str | None:
        # Refused at start (exit 2), not at the first query.
        if value is not None:
            async_database_url(value)
        return value

    # MQTT (Home Assistant): topics live under these prefixes.
    MQTT_TOPIC_PREFIX: Annotated[str, Field(pattern=r"^[^#+\x00]+$")] = "obd2"
    HA_DISCOVERY_PREFIX: Annotated[str, Field(pattern=r"^[^#+\x00]+$")] = "homeassistant"
    MQTT_CLIENT_ID: str | None = None
    # Each PID's state topic gets at most one message per interval (the newest value wins).
    MQTT_STATE_INTERVAL_S: Annotated[float, Field(gt=0, le=3600)] = 1.0
    # Alerts: webhook delivery and the worker's periodic checks.
    ALERT_WEBHOOK_TIMEOUT_S: Annotated[float, Field(gt=0, le=120)] = 10.0
    ALERT_WEBHOOK_MAX_ATTEMPTS: Annotated[int, Field(ge=1, le=50)] = 8
    ALERT_WEBHOOK_BACKOFF_S: Annotated[float, Field(gt=0, le=3600)] = 5.0
    ALERT_DELIVERY_INTERVAL_S: Annotated[float, Field(gt=0, le=60)] = 1.0
    ALERT_SILENCE_INTERVAL_S: Annotated[float, Field(gt=0, le=3600)] = 30.0
    # Outbound requests (webhooks) reach public addresses only; these comma-separated ranges
    # (e.g. a Home Assistant on the LAN: 192.168.1.0/24) are opened on top. Cloud metadata,
    # multicast, broadcast and unspecified addresses stay refused whatever is listed.
    OUTBOUND_ALLOW_CIDRS: str = ""
    # The address people and Bridge Agents reach this server at (https://cars.example.org):
    # the agent command the UI shows after creating a device uses it. Unset, the UI falls back
    # to the address the browser used, which may be one the car cannot reach, and says so.
    PUBLIC_URL: str | None = None

    @field_validator("PUBLIC_URL", mode="before")
    @classmethod
    def _public_url(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        url = value.strip()
        if not url:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"PUBLIC_URL must be an http(s) address such as https://cars.example.org: {url!r}"
            )
        if parts.query or parts.fragment:
            raise ValueError(f"PUBLIC_URL takes no query or fragment: {url!r}")
        return url.rstrip("/")

    @field_validator("OUTBOUND_ALLOW_CIDRS")
    @classmethod
    def _networks(cls, value: str) -> str:
        parse_networks(value)  # refused at start (exit 2), naming the entry
        return value

    @property
    def outbound_allow_networks(self) -> tuple[IPNetwork, ...]:
        return parse_networks(self.OUTBOUND_ALLOW_CIDRS)

    @model_validator(mode="after")
    def _production_requirements(self) -> Self:
        if self.OBD2_ENV is Environment.production:
            for name in ("DATABASE_URL", "REDIS_URL", "SESSION_SECRET"):
                if not getattr(self, name):
                    raise SettingsError(f"{name} must be set when OBD2_ENV=production")
        if self.MQTT_URL is not None and not self.MQTT_URL.startswith(("mqtt://", "mqtts://")):
            raise SettingsError("MQTT_URL must start with mqtt:// or mqtts://")
        if self.SESSION_SECRET is not None and len(self.SESSION_SECRET.encode()) < MIN_SECRET_BYTES:
            raise SettingsError(f"SESSION_SECRET must be at least {MIN_SECRET_BYTES} bytes long")
        if self.VEHICLE_OFFLINE_AFTER_S <= self.VEHICLE_STALE_AFTER_S:
            raise SettingsError("VEHICLE_OFFLINE_AFTER_S must be longer than VEHICLE_STALE_AFTER_S")
        return self

    @property
    def is_production(self) -> bool:
        return self.OBD2_ENV is Environment.production

    @property
    def log_format(self) -> LogFormat:
        if self.LOG_FORMAT is not None:
            return self.LOG_FORMAT
        return LogFormat.json if self.is_production else LogFormat.console

    @property
    def database_url(self) -> str:
        return async_database_url(self.DATABASE_URL or self.default_sqlite_url())

    def default_sqlite_url(self) -> str:
        return f"sqlite:///{(self.DATA_DIR / 'obd2-dashboard.sqlite3').resolve()}"

    def session_secret(self) -> bytes:
        # Development without a secret: a fresh one per start (sessions end on restart).
        if self.SESSION_SECRET is None:
            self.SESSION_SECRET = secrets.token_urlsafe(48)
        return self.SESSION_SECRET.encode()


def async_database_url(url: str) -> str:
    """The SQLAlchemy URL with the async driver this server uses for that database."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise SettingsError(f"DATABASE_URL is not a URL: {url!r}")
    base = scheme.split("+", 1)[0]
    if base in {"postgresql", "postgres"}:
        return f"postgresql+asyncpg://{rest}"
    if base == "sqlite":
        return f"sqlite+aiosqlite://{rest}"
    raise SettingsError(f"DATABASE_URL scheme {scheme!r} is not supported (postgresql or sqlite)")


def load_settings() -> Settings:
    """Settings from the environment; a pydantic error becomes one SettingsError line."""
    try:
        return Settings()
    except SettingsError:
        raise
    except ValidationError as exc:
        err = exc.errors()[0]
        ctx = err.get("ctx") or {}
        inner = ctx.get("error")
        if isinstance(inner, SettingsError):
            raise inner from None
        name = ".".join(str(p) for p in err["loc"]) or "settings"
        raise SettingsError(f"{name}: {err['msg']}") from None
