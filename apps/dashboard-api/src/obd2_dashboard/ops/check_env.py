"""``obd2-dashboard check-env``: checks the environment file systemd hands to every unit.

It reads the file the way systemd's ``EnvironmentFile=`` does (``KEY=value`` lines, ``#`` and
``;`` comments) and warns, one line each and never showing a value, about: permissions other
than 0600/0640, missing production variables, values the server would refuse, placeholders
left from the example, and names the server does not know (typos).
"""

import stat
import sys
from pathlib import Path

from pydantic import ValidationError

from obd2_dashboard.cli import EXIT_FAILURE, EXIT_OK, CommandError
from obd2_dashboard.settings import Settings, SettingsError

DEFAULT_FILE = Path("/etc/obd2-dashboard.env")
ALLOWED_MODES = (0o600, 0o640)
REQUIRED_IN_PRODUCTION = ("OBD2_ENV", "DATABASE_URL", "REDIS_URL", "SESSION_SECRET")
PLACEHOLDER = "CHANGE_ME"
# Read by libraries or set by the units rather than by Settings.
KNOWN_OUTSIDE_SETTINGS = frozenset({"PROMETHEUS_MULTIPROC_DIR", "PYTHONUNBUFFERED", "TZ"})


def parse_env_file(text: str) -> tuple[dict[str, str], list[str]]:
    """(variables, warnings about lines that are not plain ``KEY=value``)."""
    values: dict[str, str] = {}
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier() or key.startswith("export "):
            problems.append(f"line {number} is not KEY=value")
            continue
        if key != key.upper():
            problems.append(f"line {number}: variable names are upper case ({key})")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            problems.append(f"line {number}: {key} is quoted; write plain KEY=value")
            value = value[1:-1]
        if key in values:
            problems.append(f"line {number}: {key} is set twice (the last one wins)")
        values[key] = value
    return values, problems


def check(path: Path) -> list[str]:
    try:
        info = path.stat()
        text = path.read_text()
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from exc
    warnings: list[str] = []
    mode = stat.S_IMODE(info.st_mode)
    if mode not in ALLOWED_MODES:
        warnings.append(
            f"{path} has mode {mode:04o}: it holds secrets, make it 0600 or 0640 "
            f"(chmod 0640 {path}; chown root:obd2-dashboard {path})"
        )
    values, problems = parse_env_file(text)
    warnings += problems
    for name in REQUIRED_IN_PRODUCTION:
        if not values.get(name):
            warnings.append(f"{name} is not set: production needs it")
    if values.get("OBD2_ENV") and values["OBD2_ENV"] != "production":
        warnings.append(f"OBD2_ENV is {values['OBD2_ENV']!r}, not 'production'")
    if values.get("DATABASE_URL", "").startswith("sqlite"):
        warnings.append("DATABASE_URL is SQLite: production runs on PostgreSQL")
    for name, value in values.items():
        if PLACEHOLDER in value:
            warnings.append(f"{name} still holds the example's placeholder ({PLACEHOLDER}…)")
    known = set(Settings.model_fields) | KNOWN_OUTSIDE_SETTINGS
    warnings += [
        f"{name} is not a setting the server knows (a typo?)"
        for name in values
        if name not in known
    ]
    settable = {k: v for k, v in values.items() if k in Settings.model_fields and v != ""}
    try:
        Settings.model_validate(settable)
    except SettingsError as exc:
        warnings.append(str(exc))
    except ValidationError as exc:
        for err in exc.errors():
            inner = (err.get("ctx") or {}).get("error")
            if isinstance(inner, SettingsError):
                warnings.append(str(inner))
            else:
                field = ".".join(str(p) for p in err["loc"]) or "settings"
                warnings.append(f"{field}: {err['msg']}")
    return warnings


def check_env(path: Path) -> int:
    warnings = check(path)
    for warning in warnings:
        print(f"check-env: warning: {warning}", file=sys.stderr)
    if warnings:
        print(f"check-env: {path}: {len(warnings)} warning(s)", file=sys.stderr)
        return EXIT_FAILURE
    print(f"check-env: {path} is fine")
    return EXIT_OK
