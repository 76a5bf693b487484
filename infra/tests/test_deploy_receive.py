"""deploy/receive.sh (obd2-dashboard-receive, the deploy key's forced command), run here as sshd
would run it: the request in SSH_ORIGINAL_COMMAND, the artifact on stdin. The artifacts are
small stand-ins whose deploy/deploy.sh records how it was called; test_deploy_e2e.py runs the
real one through a real sshd."""

import fcntl
import gzip
import io
import os
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from infra.tests.conftest import REPO

RECEIVE = REPO / "deploy/receive.sh"
SHA = "0123456789abcdef0123456789abcdef01234567"
RECORDING_DEPLOY = """\
#!/usr/bin/env bash
printf '%s\\n' "$@" > "{record}"
exit {status}
"""


def artifact_bytes(
    sha: str = SHA,
    *,
    top: str | None = None,
    revision: str | None = None,
    deploy_script: str | None = "exit 0\n",
    extra: dict[str, str] | None = None,
) -> bytes:
    """A gzip tar laid out as build-artifact.sh lays one out, with the parts a test changes."""
    top = top or f"obd2-dashboard-{sha}"
    members = {f"{top}/REVISION": f"{revision or sha}\n"}
    if deploy_script is not None:
        members[f"{top}/deploy/deploy.sh"] = deploy_script
    members |= extra or {}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        directory = tarfile.TarInfo(top)
        directory.type = tarfile.DIRTYPE
        directory.mode = 0o755
        tar.addfile(directory)
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def receive(
    deploy_path: Path, request: str | None, data: bytes = b"", **env: str
) -> subprocess.CompletedProcess[str]:
    environment = {"PATH": os.environ["PATH"], "HOME": str(Path.home()), **env}
    if request is not None:
        environment["SSH_ORIGINAL_COMMAND"] = request
    result = subprocess.run(
        [str(RECEIVE), str(deploy_path)],
        input=data, capture_output=True, timeout=60, check=False, env=environment,
    )  # fmt: skip
    return subprocess.CompletedProcess(
        result.args, result.returncode, result.stdout.decode(), result.stderr.decode()
    )


@pytest.fixture
def deploy_path(tmp_path: Path) -> Path:
    return tmp_path / "opt/obd2-dashboard"


def recording_artifact(tmp_path: Path, status: int = 0, sha: str = SHA) -> bytes:
    record = tmp_path / f"deploy-{sha[:7]}.args"
    return artifact_bytes(sha, deploy_script=RECORDING_DEPLOY.format(record=record, status=status))


@pytest.mark.parametrize(
    "request_",
    [
        None,  # `ssh host` with no command: a login shell was asked for
        "",
        "id",
        "bash -i",
        "scp -t /tmp",
        "sftp",
        "internal-sftp",
        "deploy",
        "deploy obd2-dashboard-.tar.gz",
        "deploy obd2-dashboard-012345.tar.gz",  # 6 hex digits
        f"deploy obd2-dashboard-{SHA}0.tar.gz",  # 41
        "deploy obd2-dashboard-0123456G.tar.gz",
        f"deploy obd2-dashboard-{SHA.upper()}.tar.gz",
        f"deploy ../obd2-dashboard-{SHA}.tar.gz",
        f"deploy obd2-dashboard-{SHA}.tar.gz; id",
        f"deploy obd2-dashboard-{SHA}.tar.gz\nid",
        f"deploy obd2-dashboard-{SHA}.tar.gz $(id)",
        f"deploy obd2-dashboard-{SHA}.tar.gz --dry-run --force",
        f"deploy obd2-dashboard-{SHA}.tar.gz --dry-run ",
        f" deploy obd2-dashboard-{SHA}.tar.gz",
        f"DEPLOY obd2-dashboard-{SHA}.tar.gz",
    ],
)
def test_anything_but_a_deploy_request_is_refused_with_nothing_written(
    deploy_path: Path, tmp_path: Path, request_: str | None
) -> None:
    result = receive(deploy_path, request_, recording_artifact(tmp_path))
    assert result.returncode == 2
    assert result.stderr.startswith("receive: refused:")
    assert "deploy obd2-dashboard-<sha>.tar.gz [--dry-run]" in result.stderr
    assert not deploy_path.exists()
    assert not list(tmp_path.glob("deploy-*.args"))


def test_the_deploy_path_comes_from_the_server_and_must_be_absolute(tmp_path: Path) -> None:
    request = f"deploy obd2-dashboard-{SHA}.tar.gz"
    for path in ("relative/path", "/opt/with space", "/opt/$(id)"):
        result = subprocess.run(
            [str(RECEIVE), path], input=b"", capture_output=True, timeout=60, check=False,
            env={"PATH": os.environ["PATH"], "SSH_ORIGINAL_COMMAND": request}, cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 2, path
        assert b"DEPLOY_PATH must be an absolute path" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_good_artifact_is_stored_and_its_deploy_script_run(
    deploy_path: Path, tmp_path: Path, dry_run: bool
) -> None:
    name = f"obd2-dashboard-{SHA}.tar.gz"
    request = f"deploy {name}" + (" --dry-run" if dry_run else "")
    data = recording_artifact(tmp_path, status=3)
    result = receive(deploy_path, request, data)
    # deploy.sh's exit code is the forced command's, so ship.sh and the workflow see it.
    assert result.returncode == 3, result.stderr
    stored = deploy_path / "incoming" / name
    assert stored.read_bytes() == data
    args = (tmp_path / f"deploy-{SHA[:7]}.args").read_text().splitlines()
    assert args == [
        "--artifact", str(stored), "--deploy-path", str(deploy_path),
        *(["--dry-run"] if dry_run else []),
    ]  # fmt: skip
    leftovers = [p.name for p in (deploy_path / "incoming").iterdir()]
    assert sorted(leftovers) == [".receive.lock", name]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "no artifact arrived"),
        (b"plain text, not gzip\n", "is not a gzip file"),
        (b"\x1f\x8b\x08\x00" + b"\x00" * 20, "is not a gzip file"),
        (gzip.compress(b"gzip, but no tar inside\n"), "is not a tar archive"),
        (artifact_bytes(top="obd2-dashboard-ffffffff"), "outside obd2-dashboard-0123"),
        (artifact_bytes(extra={"elsewhere/x": "x"}), "holds elsewhere/x, outside"),
        (artifact_bytes(extra={f"obd2-dashboard-{SHA}/../../x": "x"}), "a path with '..'"),
        (artifact_bytes(revision="f" * 40), "REVISION in obd2-dashboard-0123"),
        (artifact_bytes(deploy_script=None), "has no obd2-dashboard-0123456789abcdef"),
    ],
    ids=["empty", "text", "broken-gzip", "gzip-not-tar", "other-top", "outside", "dotdot",
         "revision", "no-deploy-script"],
)  # fmt: skip
def test_a_bad_artifact_is_not_kept_and_nothing_runs(
    deploy_path: Path, data: bytes, reason: str
) -> None:
    result = receive(deploy_path, f"deploy obd2-dashboard-{SHA}.tar.gz", data)
    assert result.returncode == 1
    assert "receive: FAILED:" in result.stderr
    assert reason in result.stderr
    assert [p.name for p in (deploy_path / "incoming").iterdir()] == [".receive.lock"]


def test_an_artifact_over_the_size_cap_is_refused(deploy_path: Path, tmp_path: Path) -> None:
    data = artifact_bytes(extra={f"obd2-dashboard-{SHA}/big": os.urandom(4000).hex()})
    request = f"deploy obd2-dashboard-{SHA}.tar.gz"
    over = receive(deploy_path, request, data, RECEIVE_MAX_BYTES=str(len(data) - 1))
    assert over.returncode == 1
    assert f"larger than {len(data) - 1} bytes" in over.stderr
    assert [p.name for p in (deploy_path / "incoming").iterdir()] == [".receive.lock"]
    at_cap = receive(deploy_path, request, data, RECEIVE_MAX_BYTES=str(len(data)))
    assert at_cap.returncode == 0, at_cap.stderr


def test_one_artifact_is_received_at_a_time(deploy_path: Path, tmp_path: Path) -> None:
    (deploy_path / "incoming").mkdir(parents=True)
    with (deploy_path / "incoming/.receive.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        busy = receive(deploy_path, f"deploy obd2-dashboard-{SHA}.tar.gz", artifact_bytes())
    assert busy.returncode == 1
    assert "another artifact is being received" in busy.stderr
    assert [p.name for p in (deploy_path / "incoming").iterdir()] == [".receive.lock"]


def test_only_the_newest_artifacts_are_kept(deploy_path: Path, tmp_path: Path) -> None:
    shas = [f"{n:x}" * 7 for n in range(10, 15)]
    past = time.time() - 1000
    for index, sha in enumerate(shas):
        result = receive(
            deploy_path, f"deploy obd2-dashboard-{sha}.tar.gz", artifact_bytes(sha),
            RECEIVE_KEEP="3",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        # Each received one older than the next, whatever the clock's resolution.
        stored = deploy_path / f"incoming/obd2-dashboard-{sha}.tar.gz"
        os.utime(stored, (past + index, past + index))
    kept = sorted(p.name for p in (deploy_path / "incoming").glob("*.tar.gz"))
    assert kept == [f"obd2-dashboard-{sha}.tar.gz" for sha in shas[-3:]]
