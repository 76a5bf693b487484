"""``obd2-dashboard check-env``: checks the environment file systemd hands to every unit.

It reads the file the way systemd's ``EnvironmentFile=`` does (``KEY=value`` lines, ``#`` and
``;`` comments) and warns, one line each and never showing a value, about: permissions other
than 0600/0640, missing production variables, values the server would refuse, placeholders
left from the example, weak secrets (a SESSION_SECRET under 32 characters, a database or Redis
password under 16, a common password, a production Redis without a password) and names the
server does not know (typos). The deploy stops on any warning.
"""

import re
import stat
import sys
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import ValidationError

from obd2_dashboard.auth.passwords import common_passwords
from obd2_dashboard.ops.errors import EXIT_FAILURE, EXIT_OK, CommandError
from obd2_dashboard.settings import Settings, SettingsError

DEFAULT_FILE = Path("/etc/obd2-dashboard.env")
ALLOWED_MODES = (0o600, 0o640)
REQUIRED_IN_PRODUCTION = ("OBD2_ENV", "DATABASE_URL", "REDIS_URL", "SESSION_SECRET")
PLACEHOLDER = "CHANGE_ME"
# CHANGE_ME as the example writes it, and as people retype it.
_PLACEHOLDER = re.compile(r"change[_-]?me", re.IGNORECASE)
MIN_SESSION_SECRET_CHARS = 32
MIN_PASSWORD_CHARS = 16
MAKE_ONE = "make one with: openssl rand -hex 24"
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


def _url_password(url: str) -> tuple[str | None, str | None]:
    """(the password of a database or Redis URL, its host); either None when there is none.

    Both libpq and redis-py also take the password as a ``password=`` query parameter, and a
    Unix socket as a ``host=`` one (libpq) or the ``unix://`` scheme (Redis).
    """
    try:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        password = unquote(parts.password) if parts.password is not None else None
        host = parts.hostname
    except ValueError:
        return None, None
    if password is None and query.get("password"):
        password = query["password"][-1]
    if not host and query.get("host"):
        host = query["host"][-1]
    if parts.scheme == "unix":
        host = parts.path
    return password or None, host or None


def _weak_secret(name: str, secret: str, minimum: int, what: str) -> str | None:
    if _PLACEHOLDER.search(secret):
        return None  # reported once, as a placeholder
    if len(secret) < minimum:
        return f"{name}: {what} is shorter than {minimum} characters; {MAKE_ONE}"
    if secret.casefold() in common_passwords():
        return f"{name}: {what} is a common password; {MAKE_ONE}"
    return None


def check_secrets(values: dict[str, str]) -> list[str]:
    """Example and weak secrets: SESSION_SECRET, the passwords in DATABASE_URL and REDIS_URL."""
    warnings: list[str] = []
    production = values.get("OBD2_ENV") == "production"
    secret = values.get("SESSION_SECRET", "")
    if secret and not _PLACEHOLDER.search(secret):
        if len(secret) < MIN_SESSION_SECRET_CHARS:
            warnings.append(
                f"SESSION_SECRET is shorter than {MIN_SESSION_SECRET_CHARS} characters; "
                "make one with: openssl rand -base64 48"
            )
        elif secret.casefold() in common_passwords():
            warnings.append("SESSION_SECRET is a common password; openssl rand -base64 48")
    database = values.get("DATABASE_URL", "")
    if database.startswith("postgres"):
        password, host = _url_password(database)
        if password is not None:
            problem = _weak_secret("DATABASE_URL", password, MIN_PASSWORD_CHARS, "its password")
            warnings += [problem] if problem else []
        elif host is not None and not host.startswith("/"):
            warnings.append(
                "DATABASE_URL has no password: PostgreSQL over TCP takes one "
                "(postgresql://obd2:PASSWORD@127.0.0.1:5432/obd2)"
            )
    redis = values.get("REDIS_URL", "")
    if redis:
        password, _host = _url_password(redis)
        if password is not None:
            problem = _weak_secret("REDIS_URL", password, MIN_PASSWORD_CHARS, "its password")
            warnings += [problem] if problem else []
        elif production:
            warnings.append(
                "REDIS_URL has no password: in production Redis requires one (requirepass) "
                "and the URL carries it (redis://:PASSWORD@127.0.0.1:6379/0)"
            )
    return warnings


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
        if _PLACEHOLDER.search(value):
            warnings.append(f"{name} still holds the example's placeholder ({PLACEHOLDER}…)")
    secret_warnings = check_secrets(values)
    warnings += secret_warnings
    known = set(Settings.model_fields) | KNOWN_OUTSIDE_SETTINGS
    warnings += [
        f"{name} is not a setting the server knows (a typo?)"
        for name in values
        if name not in known
    ]
    settable = {k: v for k, v in values.items() if k in Settings.model_fields and v != ""}
    if any(w.startswith("SESSION_SECRET ") for w in secret_warnings):
        # Reported above; the server's own length check would say it a second time.
        settable["SESSION_SECRET"] = "x" * MIN_SESSION_SECRET_CHARS * 2
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
