"""``obd2-dashboard import`` run as the operator runs it: a process with a clean environment."""

import json
from pathlib import Path

import pytest

from tests.conftest import clean_env, run_cli
from tests.imports.test_imports import GPX_TRACK, TORQUE_LOG


@pytest.fixture
def env(empty_database: str, tmp_path: Path) -> dict[str, str]:
    env = clean_env(DATABASE_URL=empty_database, DATA_DIR=str(tmp_path / "var"))
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    user = run_cli(
        "create-user", "--email", "me@example.com", "--password-stdin",
        env=env, stdin="s3cret tractor passphrase\n", cwd=tmp_path,
    )  # fmt: skip
    assert user.returncode == 0, user.stderr
    return env


def _vehicle(env: dict[str, str], tmp_path: Path, name: str) -> str:
    made = run_cli(
        "create-vehicle", "--owner", "me@example.com", "--name", name, "--json",
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    return str(json.loads(made.stdout)["vehicle_id"])


def test_import_prints_a_summary_and_stores_nothing_twice(
    env: dict[str, str], tmp_path: Path
) -> None:
    vehicle = _vehicle(env, tmp_path, "Torque car")
    dry = run_cli("import", str(TORQUE_LOG), "--vehicle", vehicle, "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert "1829 samples read, would store 1829" in dry.stdout

    first = run_cli("import", str(TORQUE_LOG), "--vehicle", vehicle, "--json", env=env)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert (summary["format"], summary["stored"], summary["duplicates"]) == ("torque-csv", 1829, 0)
    assert "columns left out (unknown): Horizontal Dilution of Precision" in first.stderr

    again = run_cli("import", str(TORQUE_LOG), "--vehicle", vehicle, env=env)
    assert again.returncode == 0, again.stderr
    assert "stored 0, 1829 duplicate" in again.stdout

    gpx = run_cli("import", str(GPX_TRACK), "--vehicle", vehicle, "--format", "gpx", env=env)
    assert gpx.returncode == 0, gpx.stderr
    assert "import (gpx): 34 samples read, stored 34" in gpx.stdout


def test_import_refuses_what_it_cannot_read_in_one_line(
    env: dict[str, str], tmp_path: Path
) -> None:
    vehicle = _vehicle(env, tmp_path, "Car")
    wrong = run_cli("import", str(GPX_TRACK), "--vehicle", vehicle, "--format", "csv", env=env)
    assert wrong.returncode == 1
    assert "nothing was stored" in wrong.stderr
    assert len(wrong.stderr.strip().splitlines()) == 1

    missing = run_cli("import", str(tmp_path / "nope.csv"), "--vehicle", vehicle, env=env)
    assert missing.returncode == 2
    assert "cannot read" in missing.stderr

    timeless = tmp_path / "timeless.csv"
    timeless.write_text("RPM\n800\n900\n")
    for args, code, says in (
        (["--map", "nothing-equal"], 2, "COLUMN=PID"),
        (["--rate-hz", "2", "--start", "yesterday"], 2, "--start"),
        (["--rate-hz", "0", "--start", "2025-06-14T09:30:00Z"], 2, "--rate-hz"),
        (["--vehicle", "999", "--rate-hz", "1", "--start", "1749893400"], 1, "no vehicle 999"),
    ):
        result = run_cli("import", str(timeless), "--vehicle", vehicle, *args, env=env)
        assert result.returncode == code, result.stderr
        assert says in result.stderr
    rated = run_cli(
        "import", str(timeless), "--vehicle", vehicle, "--rate-hz", "1",
        "--start", "2025-06-14T09:30:00Z", env=env,
    )  # fmt: skip
    assert rated.returncode == 0, rated.stderr
    assert "2 samples read, stored 2" in rated.stdout
