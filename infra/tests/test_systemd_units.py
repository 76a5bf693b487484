"""The units pass `systemd-analyze verify` and rate below 4.0 in `systemd-analyze security`.

systemd is not PID 1 here, so both run offline on a directory laid out like the VPS: the units
in /etc/systemd/system, the system's own units (for the targets they name) and the release's
executable at the path ExecStart names — verify fails when that is missing.
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from infra.tests.conftest import REPO, tool

UNITS = REPO / "infra/systemd"
SERVICES = sorted(p.name for p in UNITS.glob("*.service"))
# The agent's unit runs in the car, not on the server: no server environment or release dir.
CAR_SERVICES = {"obd2-dashboard-bridge.service"}
SERVER_SERVICES = [s for s in SERVICES if s not in CAR_SERVICES]
TIMERS = sorted(p.name for p in UNITS.glob("*.timer"))
MAX_EXPOSURE = 4.0


def exec_paths() -> set[str]:
    found = set()
    for unit in UNITS.glob("*.service"):
        for line in unit.read_text().splitlines():
            if line.startswith("ExecStart="):
                found.add(line.removeprefix("ExecStart=").split()[0])
    return found


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("vps-root")
    system = root / "etc/systemd/system"
    system.mkdir(parents=True)
    for unit in [*SERVICES, *TIMERS]:
        shutil.copy(UNITS / unit, system / unit)
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    for path in exec_paths():
        binary = root / path.lstrip("/")
        binary.parent.mkdir(parents=True, exist_ok=True)
        binary.write_text("#!/bin/sh\n")
        binary.chmod(0o755)
    return root


def verify(root: Path, *units: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            tool("systemd-analyze"),
            "verify",
            f"--root={root}",
            "--man=no",
            "--generators=no",
            *units,
        ],
        cwd=root / "etc/systemd/system",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_expected_units_exist() -> None:
    assert SERVICES == [
        "obd2-dashboard-api.service",
        "obd2-dashboard-backup.service",
        "obd2-dashboard-bridge.service",
        "obd2-dashboard-restore-drill.service",
        "obd2-dashboard-worker.service",
    ]
    assert TIMERS == ["obd2-dashboard-backup.timer", "obd2-dashboard-restore-drill.timer"]


def test_verify_passes_without_a_word(root: Path) -> None:
    result = verify(root, *SERVICES, *TIMERS)
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""


def test_verify_notices_a_missing_executable(root: Path, tmp_path: Path) -> None:
    broken = tmp_path / "root"
    shutil.copytree(root, broken, symlinks=True)
    for path in exec_paths():
        (broken / path.lstrip("/")).unlink()
    result = verify(broken, "obd2-dashboard-api.service")
    assert result.returncode != 0
    assert "is not executable" in result.stderr


@pytest.mark.parametrize("unit", SERVICES)
def test_security_exposure_is_below_4(root: Path, unit: str) -> None:
    result = subprocess.run(
        [
            tool("systemd-analyze"),
            "security",
            "--offline=true",
            f"--root={root}",
            "--no-pager",
            unit,
        ],
        cwd=root / "etc/systemd/system",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) < MAX_EXPOSURE


@pytest.mark.parametrize("unit", SERVER_SERVICES)
def test_every_service_runs_as_the_service_user_from_the_current_release(unit: str) -> None:
    text = (UNITS / unit).read_text()
    for line in (
        "EnvironmentFile=/etc/obd2-dashboard.env",
        "User=obd2-dashboard",
        "WorkingDirectory=/opt/obd2-dashboard/current",
        "ProtectSystem=strict",
        "CapabilityBoundingSet=",
        "SystemCallFilter=@system-service",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "ProtectHome=yes",
    ):
        assert line in text.splitlines(), f"{unit} lacks {line}"
    long_running = unit in {"obd2-dashboard-api.service", "obd2-dashboard-worker.service"}
    assert ("Restart=on-failure" in text) == long_running


def test_timers_run_nightly_and_monthly() -> None:
    backup = (UNITS / "obd2-dashboard-backup.timer").read_text()
    drill = (UNITS / "obd2-dashboard-restore-drill.timer").read_text()
    assert "OnCalendar=*-*-* 03:15:00 UTC" in backup
    assert "OnCalendar=*-*-01 05:30:00 UTC" in drill
    assert "Persistent=true" in backup
    assert "Persistent=true" in drill


@pytest.mark.parametrize("unit", ["obd2-dashboard-api.service", "obd2-dashboard-worker.service"])
def test_the_api_and_worker_may_reach_beyond_localhost_but_not_metadata(unit: str) -> None:
    # The worker sends alert webhooks and talks to a remote MQTT broker; the API resolves webhook
    # hosts with whatever resolver the machine has. kit/outbound.py decides where a user-given
    # URL may go; the unit only keeps the cloud metadata services out.
    lines = (UNITS / unit).read_text().splitlines()
    assert "IPAddressDeny=any" not in lines
    assert not [line for line in lines if line.startswith("IPAddressAllow=")]
    denied = next(line for line in lines if line.startswith("IPAddressDeny="))
    assert {"169.254.169.254", "fd00:ec2::254"} <= set(denied.split("=", 1)[1].split())
    # The reason is written beside it, for whoever comes to tighten it again.
    assert "kit/outbound.py" in (UNITS / unit).read_text()


@pytest.mark.parametrize(
    "unit", ["obd2-dashboard-backup.service", "obd2-dashboard-restore-drill.service"]
)
def test_backup_units_reach_localhost_only(unit: str) -> None:
    lines = (UNITS / unit).read_text().splitlines()
    assert "IPAddressDeny=any" in lines
    assert "IPAddressAllow=localhost" in lines


PGBACKREST_UNITS = REPO / "infra/pgbackrest"


def test_the_pgbackrest_units_pass_verify(tmp_path: Path) -> None:
    """infra/pgbackrest's units (doc/ops-backups.md) run as postgres or root, not as the
    service user: they are checked here, apart from the service's own."""
    units = sorted(p.name for p in PGBACKREST_UNITS.glob("*.service")) + sorted(
        p.name for p in PGBACKREST_UNITS.glob("*.timer")
    )
    assert units == [
        "obd2-dashboard-restore-drill-offsite.service",
        "obd2-pgbackrest-full.service",
        "obd2-pgbackrest-incr.service",
        "obd2-dashboard-restore-drill-offsite.timer",
        "obd2-pgbackrest-full.timer",
        "obd2-pgbackrest-incr.timer",
    ]
    system = tmp_path / "etc/systemd/system"
    system.mkdir(parents=True)
    for unit in units:
        shutil.copy(PGBACKREST_UNITS / unit, system / unit)
    shutil.copytree("/usr/lib/systemd/system", tmp_path / "usr/lib/systemd/system", symlinks=True)
    for unit_file in PGBACKREST_UNITS.glob("*.service"):
        for line in unit_file.read_text().splitlines():
            if line.startswith("ExecStart="):
                binary = tmp_path / line.removeprefix("ExecStart=").split()[0].lstrip("/")
                binary.parent.mkdir(parents=True, exist_ok=True)
                binary.write_text("#!/bin/sh\n")
                binary.chmod(0o755)
    result = verify(tmp_path, *units)
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""
    full = (PGBACKREST_UNITS / "obd2-pgbackrest-full.timer").read_text()
    incr = (PGBACKREST_UNITS / "obd2-pgbackrest-incr.timer").read_text()
    assert "OnCalendar=Sun *-*-* 02:30:00 UTC" in full
    assert "OnCalendar=Mon..Sat *-*-* 02:30:00 UTC" in incr
    for kind in ("full", "incr"):
        service = (PGBACKREST_UNITS / f"obd2-pgbackrest-{kind}.service").read_text()
        assert "User=postgres" in service.splitlines()
        for repo in ("1", "2"):
            assert f"--type={kind} --repo={repo} backup" in service
