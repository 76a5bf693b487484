"""deploy/build-artifact.sh and the web UI: an artifact without it would have nginx answer 404
for /. The script builds the UI when apps/web/dist is missing or older than its sources, fails
when there is still no index.html, and leaves it out only when told (--no-web).

npm is a stand-in here (NPM=…): the real `npm ci` needs the registry and tests reach loopback
only; `make web` and CI run the real one. It records its calls and "builds" an index.html."""

import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from infra.tests.conftest import REPO, find_uv

SHA = "abcdef0123456789abcdef0123456789abcdef01"
SOURCES = ("apps", "libs", "pyproject.toml", "uv.lock", "README.md", "infra", "deploy", "doc")
STAND_IN_NPM = """\
#!/usr/bin/env bash
# Stand-in npm: records its arguments; `run build` writes dist/index.html unless told not to.
echo "$*" >> "{calls}"
echo "npm says something on stdout"
if [ "$1" = ci ] && [ -f "{fail_ci}" ]; then exit 1; fi
if [ "$1" = run ] && [ "$2" = build ] && [ ! -f "{no_output}" ]; then
  mkdir -p "$4/dist"
  echo "<!doctype html><title>built $(date +%s%N)</title>" > "$4/dist/index.html"
fi
"""


class Source:
    def __init__(self, root: Path, tmp: Path) -> None:
        self.root = root
        self.calls = tmp / "npm.calls"
        self.fail_ci = tmp / "npm.fail-ci"
        self.no_output = tmp / "npm.no-output"
        self.npm = tmp / "npm"
        self.npm.write_text(
            STAND_IN_NPM.format(calls=self.calls, fail_ci=self.fail_ci, no_output=self.no_output)
        )
        self.npm.chmod(0o755)
        self.out = tmp / "out"

    def build(self, *extra: str) -> subprocess.CompletedProcess[str]:
        self.calls.unlink(missing_ok=True)
        return subprocess.run(
            [str(self.root / "deploy/build-artifact.sh"), "--out", str(self.out), "--sha", SHA,
             *extra],
            cwd=self.root, capture_output=True, text=True, timeout=300, check=False,
            env=os.environ | {"UV": find_uv(), "UV_OFFLINE": "1", "NPM": str(self.npm)},
        )  # fmt: skip

    def npm_calls(self) -> list[str]:
        return self.calls.read_text().splitlines() if self.calls.exists() else []

    @property
    def artifact(self) -> Path:
        return self.out / f"obd2-dashboard-{SHA}.tar.gz"

    def index_in_artifact(self) -> str | None:
        with tarfile.open(self.artifact) as tar:
            try:
                member = tar.extractfile(f"obd2-dashboard-{SHA}/apps/web/dist/index.html")
            except KeyError:
                return None
            assert member is not None
            return member.read().decode()


@pytest.fixture
def source(tmp_path: Path) -> Source:
    """A copy of the repository's sources without a built web UI."""
    root = tmp_path / "src"
    ignore = shutil.ignore_patterns(".venv", "node_modules", "__pycache__", "*.pyc", "dist")
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, root / name, ignore=ignore)
        else:
            shutil.copy(REPO / name, root / name)
    assert not (root / "apps/web/dist").exists()
    return Source(root, tmp_path)


BUILD_CALLS = ["ci --prefix apps/web --no-audit --no-fund --loglevel=error",
               "run build --prefix apps/web"]  # fmt: skip


def test_the_web_ui_is_built_when_missing_or_stale_and_shipped(source: Source) -> None:
    # Missing: built, then shipped in the artifact.
    built = source.build()
    assert built.returncode == 0, built.stderr
    assert source.npm_calls() == BUILD_CALLS
    assert "apps/web/dist/index.html is missing" in built.stderr
    # npm's chatter goes to stderr: stdout is the artifact's path alone.
    assert built.stdout.splitlines() == [str(source.artifact)]
    index = (source.root / "apps/web/dist/index.html").read_text()
    assert source.index_in_artifact() == index

    # Fresh: not built again.
    again = source.build()
    assert again.returncode == 0, again.stderr
    assert source.npm_calls() == []
    assert source.index_in_artifact() == index

    # A source changed after the build: built again.
    main = next((source.root / "apps/web/src").rglob("*.ts"))
    later = (source.root / "apps/web/dist/index.html").stat().st_mtime + 10
    os.utime(main, (later, later))
    stale = source.build()
    assert stale.returncode == 0, stale.stderr
    assert "apps/web/dist is older than its sources" in stale.stderr
    assert source.npm_calls() == BUILD_CALLS
    assert source.index_in_artifact() != index


@pytest.mark.parametrize(
    ("flag", "message"),
    [("no_output", "no apps/web/dist/index.html after the web UI build"),
     ("fail_ci", "npm ci in apps/web failed")],
)  # fmt: skip
def test_no_web_ui_fails_the_build(source: Source, flag: str, message: str) -> None:
    getattr(source, flag).write_text("")
    failed = source.build()
    assert failed.returncode == 1
    assert message in failed.stderr
    assert not source.artifact.exists()


def test_no_web_is_an_api_only_artifact_on_purpose(source: Source) -> None:
    built = source.build("--no-web")
    assert built.returncode == 0, built.stderr
    assert source.npm_calls() == []
    assert "--no-web: the artifact serves the API only" in built.stderr
    assert source.index_in_artifact() is None
    with tarfile.open(source.artifact) as tar:
        names = tar.getnames()
    assert f"obd2-dashboard-{SHA}/REVISION" in names
    assert not any("/apps/web/" in name for name in names)
