import subprocess
import sys
from pathlib import Path

import pytest

from obd2_dashboard.ops.check_env import check, parse_env_file

REPO = Path(__file__).resolve().parents[4]
EXAMPLE = REPO / "infra/systemd/obd2-dashboard.env.example"
CLI = str(Path(sys.executable).parent / "obd2-dashboard")
SECRET = "s3cr3t-" + "k" * 40
GOOD = f"""# production settings
OBD2_ENV=production
DATABASE_URL=postgresql://obd2:pw-never-shown@127.0.0.1:5432/obd2
REDIS_URL=redis://127.0.0.1:6379/0
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
    joined = "\n".join(check(write(tmp_path, text, 0o600)))
    assert "SESSION_SECRET must be at least 32 bytes" in joined
    assert "MQTT_URL still holds the example's placeholder" in joined


def test_the_example_is_plain_key_value_and_names_every_setting() -> None:
    from obd2_dashboard.settings import Settings

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
    for output in (good.stdout + good.stderr, loose.stdout + loose.stderr):
        assert SECRET not in output
        assert "pw-never-shown" not in output
    missing = subprocess.run(
        [CLI, "check-env", "--file", str(tmp_path / "nope.env")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert missing.returncode == 1
    assert len(missing.stderr.strip().splitlines()) == 1
