"""The layering contracts (`.importlinter`, run by `make lint`) hold today, and fail on a new
import that breaks one: each case copies the sources, adds one forbidden import, and runs the
same `lint-imports` on the copy."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SOURCES = {
    "obd2_dashboard": REPO / "apps/dashboard-api/src/obd2_dashboard",
    "obd2_bridge": REPO / "apps/bridge-agent/src/obd2_bridge",
    "obd2_protocol": REPO / "libs/obd2-protocol/src/obd2_protocol",
}
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(REPO / ".importlinter")],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for name, source in SOURCES.items():
        shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_the_sources_keep_every_contract(tree: Path) -> None:
    result = lint_imports(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        (
            "obd2_dashboard/trips/service.py",
            "from obd2_dashboard.vehicles.repository import VehicleRepository",
            "Other modules reach vehicles only through its service",
        ),
        (
            "obd2_dashboard/kit/db.py",
            "from obd2_dashboard.telemetry import service",
            "kit imports no domain",
        ),
        (
            "obd2_dashboard/telemetry/export.py",
            "import obd",
            "Only the Bridge Agent imports python-OBD (GPL)",
        ),
        (
            "obd2_dashboard/telemetry/export.py",
            "from obd2_dashboard.bridge.endpoints import router",
            "Other modules reach bridge only through its service",
        ),
        (
            "obd2_bridge/status.py",
            "from obd2_dashboard import settings",
            "The apps never import each other",
        ),
        (
            "obd2_dashboard/ops/backup.py",
            "from obd2_dashboard.cli import main",
            "Nothing below the operator CLI imports it",
        ),
    ],
    ids=[
        "cross-domain-repository",
        "kit-to-domain",
        "python-obd-in-server",
        "bridge-endpoints",
        "app-to-app",
        "command-to-cli",
    ],
)
def test_a_new_forbidden_import_fails_the_lint(
    tree: Path, module: str, line: str, contract: str
) -> None:
    path = tree / module
    path.write_text(path.read_text() + f"\n{line}  # noqa\n")
    result = lint_imports(tree)
    assert result.returncode != 0
    assert f"{contract}" in result.stdout
    broken = [row for row in result.stdout.splitlines() if " BROKEN" in row]
    assert len(broken) == 1, broken
    assert broken[0].startswith(contract)
