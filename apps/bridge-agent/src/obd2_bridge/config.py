# SPDX-License-Identifier: GPL-2.0-or-later
"""Agent settings: defaults < config file (TOML) < environment < command line."""

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from obd2_protocol import is_known_pid

DEFAULT_CONFIG_PATH = Path("/etc/obd2-bridge.toml")
DEFAULT_FAST_PIDS = ("RPM", "SPEED", "THROTTLE_POS", "ENGINE_LOAD")
DEFAULT_SLOW_PIDS = ("COOLANT_TEMP", "INTAKE_TEMP", "FUEL_LEVEL", "MAF", "INTAKE_PRESSURE")
ENV = {
    "OBD2_ADAPTER": "adapter",
    "OBD2_API_URL": "api_url",
    "OBD2_DEVICE_TOKEN": "token",
    "OBD2_SPOOL": "spool",
    "OBD2_BAUDRATE": "baudrate",
}


class ConfigError(ValueError):
    """A setting is missing or wrong; the message names it."""


@dataclass(frozen=True, slots=True)
class AgentConfig:
    adapter: str = ""
    api_url: str = ""
    token: str = ""
    baudrate: int | None = 38400
    protocol: str | None = None
    spool: Path = Path("/var/lib/obd2-bridge/spool.sqlite3")
    spool_max_mb: float = 256.0
    fast_pids: tuple[str, ...] = DEFAULT_FAST_PIDS
    slow_pids: tuple[str, ...] = DEFAULT_SLOW_PIDS
    fast_interval_s: float = 0.0
    slow_interval_s: float = 1.0
    multi_pid: bool = True
    response_count_hints: bool = True
    tune_adapter_timing: bool = True
    adapter_timeout_s: float = 5.0
    voltage_interval_s: float = 5.0
    dtc_interval_s: float = 300.0
    engine_off_after_s: float = 30.0
    heartbeat_s: float = 60.0
    engine_watch_s: float = 1.0
    engine_probe_s: float = 300.0
    engine_running_v: float = 13.2
    pause_below_v: float = 11.8
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 60.0
    upload_max_batch: int = 1000
    upload_backoff_min_s: float = 0.5
    upload_backoff_max_s: float = 60.0
    ack_timeout_s: float = 30.0
    websocket_retry_s: float = 60.0
    status_interval_s: float = 10.0
    log_level: str = "INFO"
    extra: dict[str, Any] = field(default_factory=dict)

    def check(self) -> "AgentConfig":
        for name, flag in (
            ("adapter", "--adapter / OBD2_ADAPTER"),
            ("api_url", "--api / OBD2_API_URL"),
            ("token", "--token / OBD2_DEVICE_TOKEN"),
        ):
            if not getattr(self, name):
                raise ConfigError(f"{name} is not set ({flag} or the config file)")
        if not self.api_url.startswith(("http://", "https://")):
            raise ConfigError(f"api_url must start with http:// or https://, got {self.api_url!r}")
        for pid in (*self.fast_pids, *self.slow_pids):
            if not is_known_pid(pid):
                raise ConfigError(f"unknown PID {pid!r} (python-OBD names, e.g. RPM, SPEED)")
        if self.upload_max_batch < 1:
            raise ConfigError("upload_max_batch must be at least 1")
        return self


def _coerce(name: str, value: Any) -> Any:
    kinds = {f.name: f.type for f in fields(AgentConfig)}
    kind = str(kinds.get(name, ""))
    try:
        if name in ("fast_pids", "slow_pids"):
            items = value.split(",") if isinstance(value, str) else list(value)
            return tuple(str(p).strip().upper() for p in items if str(p).strip())
        if name == "spool":
            return Path(value)
        if name == "baudrate":
            return None if value in ("", "auto", None) else int(value)
        if kind.startswith("float"):
            return float(value)
        if kind.startswith("int"):
            return int(value)
        if kind.startswith("bool"):
            return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name}: {value!r} is not a valid value") from exc
    return value


def load_config(
    path: Path | None, overrides: dict[str, Any], environ: dict[str, str] | None = None
) -> AgentConfig:
    environ = dict(os.environ if environ is None else environ)
    values: dict[str, Any] = {}
    config_path = path or Path(environ.get("OBD2_BRIDGE_CONFIG", str(DEFAULT_CONFIG_PATH)))
    if config_path.exists():
        try:
            data = tomllib.loads(config_path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read {config_path}: {exc}") from exc
        known = {f.name for f in fields(AgentConfig)}
        for key, value in data.items():
            if key not in known or key == "extra":
                raise ConfigError(f"{config_path}: unknown setting {key!r}")
            values[key] = value
    elif path is not None:
        raise ConfigError(f"config file {path} does not exist")
    for env_name, key in ENV.items():
        if environ.get(env_name):
            values[key] = environ[env_name]
    values.update({k: v for k, v in overrides.items() if v is not None})
    return replace(AgentConfig(), **{k: _coerce(k, v) for k, v in values.items()})
