import subprocess
from pathlib import Path

import pytest

from obd2_dashboard.ops.check_env import check, parse_env_file
from obd2_dashboard.settings import Settings
from obd2_testkit.commands import DASHBOARD_CLI

REPO = Path(__file__).resolve().parents[4]
EXAMPLE = REPO / "infra/systemd/obd2-dashboard.env.example"
CLI = DASHBOARD_CLI
SECRET = "s3cr3t-" + "k" * 40
DB_PASSWORD = "pw-never-shown-Xq7"
REDIS_PASSWORD = "redis-never-shown-Zr4"
GOOD = f"""# production settings
OBD2_ENV=production
DATABASE_URL=postgresql://obd2:{DB_PASSWORD}@127.0.0.1:5432/obd2
REDIS_URL=redis://:{REDIS_PASSWORD}@127.0.0.1:6379/0
SESSION_SECRET={SECRET}
BACKUP_KEEP=14
"""


def write(tmp_path: Path, text: str, mode: int) -> Path:
    path = tmp_path / "obd2-dashboard.env"
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.mark.parametrize("mode", [0o600, 0o640])
def test_a_good_file_passes(tmp_path: Path, mode: int) -> None:
    assert check(write(tmp_path, GOOD, mode)) == []


@pytest.mark.parametrize("mode", [0o644, 0o660, 0o604, 0o400])
def test_other_modes_are_flagged(tmp_path: Path, mode: int) -> None:
    warnings = check(write(tmp_path, GOOD, mode))
    assert len(warnings) == 1
    assert f"mode {mode:04o}" in warnings[0]


def test_missing_production_variables_bad_values_and_typos(tmp_path: Path) -> None:
    text = "OBD2_ENV=production\nSESION_SECRET=x\nBACKUP_KEEP=0\nexport FOO=1\n"
    warnings = check(write(tmp_path, text, 0o600))
    joined = "\n".join(warnings)
    for name in ("DATABASE_URL is not set", "REDIS_URL is not set", "SESSION_SECRET is not set"):
        assert name in joined
    assert "SESION_SECRET is not a setting the server knows" in joined
    assert "BACKUP_KEEP" in joined
    assert "line 4 is not KEY=value" in joined


def test_short_secret_and_placeholders(tmp_path: Path) -> None:
    text = GOOD.replace(SECRET, "short") + "MQTT_URL=mqtt://CHANGE_ME\n"
    warnings = check(write(tmp_path, text, 0o600))
    joined = "\n".join(warnings)
    assert "SESSION_SECRET is shorter than 32 characters" in joined
    assert "MQTT_URL still holds the example's placeholder" in joined
    # Said once, not again by the server's own length check.
    assert len([w for w in warnings if "SESSION_SECRET" in w]) == 1


def test_a_session_secret_of_31_characters_is_short_even_in_more_bytes(tmp_path: Path) -> None:
    # 31 characters of two bytes each: 62 bytes, which the server alone would take.
    text = GOOD.replace(SECRET, "é" * 31)
    assert check(write(tmp_path, text, 0o600)) == [
        "SESSION_SECRET is shorter than 32 characters; make one with: openssl rand -base64 48"
    ]
    assert check(write(tmp_path, GOOD.replace(SECRET, "é" * 32), 0o600)) == []


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://obd2:short-15-chars!@127.0.0.1/obd2",
         "DATABASE_URL: its password is shorter than 16 characters"),
        ("postgresql://obd2:0123456789012345@127.0.0.1/obd2",
         "DATABASE_URL: its password is a common password"),
        ("postgresql://obd2@127.0.0.1:5432/obd2", "DATABASE_URL has no password"),
        ("postgresql://obd2@db.internal/obd2?password=tooshort", "shorter than 16"),
        ("postgresql+psycopg://obd2:%41%42%43@127.0.0.1/obd2", "shorter than 16"),
    ],
)  # fmt: skip
def test_weak_database_passwords_are_flagged(tmp_path: Path, url: str, expected: str) -> None:
    text = GOOD.replace(f"postgresql://obd2:{DB_PASSWORD}@127.0.0.1:5432/obd2", url)
    warnings = check(write(tmp_path, text, 0o600))
    assert [w for w in warnings if w.startswith("DATABASE_URL")] == [
        next(w for w in warnings if expected in w)
    ]


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://obd2:{'p' * 16}-x@127.0.0.1:5432/obd2",
        # Peer authentication over the Unix socket takes no password.
        "postgresql:///obd2?host=/run/postgresql",
        "postgresql://obd2@/obd2",
    ],
)
def test_strong_or_socket_database_urls_pass(tmp_path: Path, url: str) -> None:
    text = GOOD.replace(f"postgresql://obd2:{DB_PASSWORD}@127.0.0.1:5432/obd2", url)
    assert check(write(tmp_path, text, 0o600)) == []


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://127.0.0.1:6379/0", "REDIS_URL has no password: in production Redis requires"),
        ("rediss://redis.example.net:6380/0", "REDIS_URL has no password"),
        ("redis://:short-password@127.0.0.1:6379/0",
         "REDIS_URL: its password is shorter than 16 characters"),
        ("redis://default:short-password@127.0.0.1:6379/0", "shorter than 16"),
        ("redis://127.0.0.1:6379/0?password=short", "shorter than 16"),
        ("unix:///run/redis/redis.sock?db=0", "REDIS_URL has no password"),
    ],
)  # fmt: skip
def test_production_redis_needs_a_long_password(tmp_path: Path, url: str, expected: str) -> None:
    text = GOOD.replace(f"redis://:{REDIS_PASSWORD}@127.0.0.1:6379/0", url)
    warnings = check(write(tmp_path, text, 0o600))
    assert len(warnings) == 1, warnings
    assert expected in warnings[0]


def test_a_redis_without_a_password_is_flagged_in_production_only(tmp_path: Path) -> None:
    text = GOOD.replace(f"redis://:{REDIS_PASSWORD}@127.0.0.1:6379/0", "redis://127.0.0.1/0")
    staging = text.replace("OBD2_ENV=production", "OBD2_ENV=development")
    warnings = check(write(tmp_path, staging, 0o600))
    assert warnings == ["OBD2_ENV is 'development', not 'production'"]
    good_unix = GOOD.replace(
        f"redis://:{REDIS_PASSWORD}@127.0.0.1:6379/0",
        f"unix:///run/redis/redis.sock?password={REDIS_PASSWORD}&db=0",
    )
    assert check(write(tmp_path, good_unix, 0o600)) == []


def test_the_examples_secrets_are_all_flagged(tmp_path: Path) -> None:
    # The example as installed (0640), left unedited: every secret in it is a placeholder.
    warnings = check(write(tmp_path, EXAMPLE.read_text(), 0o640))
    flagged = {w.split(" ", 1)[0] for w in warnings}
    assert flagged == {"DATABASE_URL", "REDIS_URL", "SESSION_SECRET"}
    assert all("still holds the example's placeholder" in w for w in warnings)
    # Retyped in another case, or without the underscore, it is still the placeholder.
    for retyped in ("change_me-0123456789abcdef", "ChangeMe0123456789abcdef"):
        text = GOOD.replace(DB_PASSWORD, retyped)
        assert check(write(tmp_path, text, 0o600)) == [
            "DATABASE_URL still holds the example's placeholder (CHANGE_ME…)"
        ]


def test_the_example_is_plain_key_value_and_names_every_setting() -> None:
    values, problems = parse_env_file(EXAMPLE.read_text())
    assert problems == []
    shown = set(values)
    for line in EXAMPLE.read_text().splitlines():
        if line.startswith("# ") and "=" in line and line[2:].split("=", 1)[0].isupper():
            shown.add(line[2:].split("=", 1)[0])
    assert set(Settings.model_fields) <= shown
    # The example's placeholders are what check-env catches when they are left in.
    assert "SESSION_SECRET" in values
    assert "CHANGE_ME" in values["SESSION_SECRET"]
    # Redis requires a password in production: the example's URL carries one.
    assert values["REDIS_URL"] == "redis://:CHANGE_ME_REDIS_PASSWORD@127.0.0.1:6379/0"


def test_cli_exit_codes_and_no_secret_in_output(tmp_path: Path) -> None:
    good = subprocess.run(
        [CLI, "check-env", "--file", str(write(tmp_path, GOOD, 0o640))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert good.returncode == 0, good.stderr
    loose = subprocess.run(
        [CLI, "check-env", "--file", str(write(tmp_path, GOOD, 0o644))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert loose.returncode == 1
    assert "mode 0644" in loose.stderr
    weak = subprocess.run(
        [CLI, "check-env", "--file",
         str(write(tmp_path, GOOD.replace(REDIS_PASSWORD, "redis-weak"), 0o600))],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert weak.returncode == 1
    assert "REDIS_URL: its password is shorter than 16 characters" in weak.stderr
    for output in (good.stdout + good.stderr, loose.stdout + loose.stderr, weak.stderr):
        assert SECRET not in output
        assert DB_PASSWORD not in output
        assert REDIS_PASSWORD not in output
        assert "redis-weak" not in output
    missing = subprocess.run(
        [CLI, "check-env", "--file", str(tmp_path / "nope.env")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert missing.returncode == 1
    assert len(missing.stderr.strip().splitlines()) == 1
