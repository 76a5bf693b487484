from pathlib import Path

import pytest

from obd2_dashboard.kit.broker import make_broker
from obd2_dashboard.settings import (
    Environment,
    LogFormat,
    Settings,
    SettingsError,
    async_database_url,
    load_settings,
)
from tests.conftest import SESSION_SECRET, clean_env, run_cli

PRODUCTION = {
    "OBD2_ENV": "production",
    "DATABASE_URL": "postgresql://obd2@127.0.0.1:5432/obd2",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "SESSION_SECRET": SESSION_SECRET,
}
SETTING_NAMES = [
    "OBD2_ENV",
    "DATABASE_URL",
    "REDIS_URL",
    "SESSION_SECRET",
    "LOG_FORMAT",
    "LOG_LEVEL",
    "DATA_DIR",
    "REDIS_KEY_PREFIX",
    "OUTBOUND_ALLOW_CIDRS",
    "PUBLIC_URL",
]


@pytest.fixture
def no_settings_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("missing", ["DATABASE_URL", "REDIS_URL", "SESSION_SECRET"])
@pytest.mark.parametrize("blank", [False, True], ids=["unset", "empty"])
def test_production_cli_exits_2_naming_the_missing_variable(
    tmp_path: Path, missing: str, blank: bool
) -> None:
    variables = {k: v for k, v in PRODUCTION.items() if k != missing}
    if blank:
        variables[missing] = ""
    result = run_cli("migrate", "--check", env=clean_env(**variables), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert missing in lines[0]
    assert "production" in lines[0]
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == []  # stopped before touching anything


def test_production_refuses_a_short_secret(tmp_path: Path) -> None:
    env = clean_env(**{**PRODUCTION, "SESSION_SECRET": "s" * 31})
    result = run_cli("migrate", "--check", env=env, cwd=tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "SESSION_SECRET" in line
    assert "32 bytes" in line


def test_production_with_everything_set_is_accepted(no_settings_env: None) -> None:
    settings = Settings(**PRODUCTION)  # type: ignore[arg-type]
    assert settings.is_production
    assert settings.log_format is LogFormat.json
    assert settings.session_secret() == SESSION_SECRET.encode()


@pytest.mark.parametrize("secret", ["", "x" * 31, "\u00e9" * 15 + "x"])
def test_short_secret_is_refused_in_development_too(
    no_settings_env: None, monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    monkeypatch.setenv("SESSION_SECRET", secret)
    if not secret:
        assert load_settings().SESSION_SECRET is None  # empty means unset
        return
    with pytest.raises(SettingsError, match="SESSION_SECRET must be at least 32 bytes"):
        load_settings()


def test_secret_length_counts_bytes(no_settings_env: None) -> None:
    assert Settings(SESSION_SECRET="\u00e9" * 16).session_secret() == ("\u00e9" * 16).encode()


def test_defaults_are_embedded(
    no_settings_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.OBD2_ENV is Environment.development
    assert settings.DATABASE_URL is None
    assert settings.REDIS_URL is None
    expected = (tmp_path / "var" / "obd2-dashboard.sqlite3").resolve()
    assert settings.database_url == f"sqlite+aiosqlite:///{expected}"
    assert make_broker(settings.REDIS_URL, settings.REDIS_KEY_PREFIX).kind == "embedded"
    assert settings.log_format is LogFormat.console
    assert settings.LOG_LEVEL == "INFO"
    # Without a secret, development makes one per start, long enough to sign with.
    assert len(settings.session_secret()) >= 32
    assert settings.session_secret() == settings.session_secret()
    assert Settings().session_secret() != settings.session_secret()


def test_log_level_is_case_insensitive(
    no_settings_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOG_LEVEL", " debug ")
    assert load_settings().LOG_LEVEL == "DEBUG"


def test_data_dir_moves_the_embedded_database(
    no_settings_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "state"))
    settings = load_settings()
    assert settings.database_url == (
        f"sqlite+aiosqlite:///{tmp_path / 'state' / 'obd2-dashboard.sqlite3'}"
    )


def test_empty_redis_url_means_embedded(
    no_settings_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", "")
    monkeypatch.setenv("DATABASE_URL", "  ")
    settings = load_settings()
    assert settings.REDIS_URL is None
    assert settings.DATABASE_URL is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u@h:5432/d", "postgresql+asyncpg://u@h:5432/d"),
        ("postgres://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("postgresql+psycopg://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("sqlite:////tmp/x.db", "sqlite+aiosqlite:////tmp/x.db"),
    ],
    ids=["pg", "pg-alias", "pg-other-driver", "file"],
)
def test_database_url_gets_the_async_driver(url: str, expected: str) -> None:
    assert async_database_url(url) == expected


@pytest.mark.parametrize("url", ["mysql://h/d", "not a url", "127.0.0.1:5432"])
def test_unsupported_database_url_is_one_line(tmp_path: Path, url: str) -> None:
    result = run_cli("migrate", "--check", env=clean_env(DATABASE_URL=url), cwd=tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "DATABASE_URL" in line


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OBD2_ENV", "staging"),
        ("LOG_FORMAT", "xml"),
        ("LOG_LEVEL", "loud"),
        ("SESSION_MAX_AGE_S", "soon"),
        ("API_MAX_BODY_BYTES", "10"),
        ("OUTBOUND_ALLOW_CIDRS", "192.168.1.0/24,home-lan"),
        ("PUBLIC_URL", "cars.example.org"),
        ("PUBLIC_URL", "ftp://cars.example.org"),
        ("PUBLIC_URL", "https://cars.example.org/?a=1"),
    ],
)
def test_bad_value_is_one_line_naming_the_variable(tmp_path: Path, name: str, value: str) -> None:
    result = run_cli("migrate", "--check", env=clean_env(**{name: value}), cwd=tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert name in line


def test_outbound_allow_cidrs_is_a_list_of_networks(no_settings_env: None) -> None:
    settings = Settings(OUTBOUND_ALLOW_CIDRS=" 192.168.1.7/24, fd00::/8 ")
    assert [str(n) for n in settings.outbound_allow_networks] == ["192.168.1.0/24", "fd00::/8"]
    assert Settings().outbound_allow_networks == ()


def test_public_url_is_kept_without_its_trailing_slash(no_settings_env: None) -> None:
    assert (
        Settings(PUBLIC_URL=" https://cars.example.org/ ").PUBLIC_URL == "https://cars.example.org"
    )
    assert Settings(PUBLIC_URL="http://10.0.0.5:8000/obd").PUBLIC_URL == "http://10.0.0.5:8000/obd"
    assert Settings(PUBLIC_URL="").PUBLIC_URL is None
    assert Settings().PUBLIC_URL is None
