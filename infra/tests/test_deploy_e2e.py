"""The deploy, end to end: artifacts built as the workflow builds them, shipped over SSH to a
"VPS" (an sshd on 127.0.0.1 with keys made here, a directory as DEPLOY_PATH) and deployed by
deploy/deploy.sh against the machine's PostgreSQL and Redis.

systemd is not PID 1 here, so a stand-in for `systemctl` (written below) restarts the API the
way the unit would: it stops the process it started before and starts `obd2-dashboard serve`
from `current/` with the environment file. Everything else is the real thing.
"""

import os
import shutil
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from redis import Redis

from infra.tests.conftest import REDIS_URL, REPO, free_port, pg_url, psql, tool
from obd2_dashboard.ops.migrations import head_revision, upgrade_head
from obd2_dashboard.settings import async_database_url
from stack.processes import wait_until

SHA_A, SHA_B, SHA_C = "a" * 40, "b" * 40, "c" * 40
SOURCES = ("apps", "libs", "pyproject.toml", "uv.lock", "README.md", "infra", "deploy", "doc")
E2E_REVISION = "29990101_e2e_marker"


@dataclass
class Vps:
    host_port: int
    key: Path
    known_hosts: Path
    deploy_path: Path
    env_file: Path
    api_port: int
    state: Path
    backup_dir: Path

    def ship(self, artifact: Path, *extra: str) -> subprocess.CompletedProcess[str]:
        """What the deploy workflow's last step runs (deploy/ship.sh)."""
        env = os.environ | {
            "SSH_HOST": "127.0.0.1",
            "SSH_PORT": str(self.host_port),
            "SSH_USER": "root",
            "SSH_KEY_FILE": str(self.key),
            "SSH_KNOWN_HOSTS_FILE": str(self.known_hosts),
            "DEPLOY_PATH": str(self.deploy_path),
        }
        args = [
            "--env-file", str(self.env_file),
            "--readyz-url", f"http://127.0.0.1:{self.api_port}/readyz",
            "--python", str(Path(sys.base_prefix) / "bin/python3"),
            "--uv", find_uv(),
            "--offline",
            "--keep", "2",
            *extra,
        ]  # fmt: skip
        return subprocess.run(
            [str(REPO / "deploy/ship.sh"), str(artifact), *args],
            env=env, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip

    def current_release(self) -> str:
        return os.readlink(self.deploy_path / "current")

    def readyz(self) -> dict[str, object]:
        response = httpx.get(f"http://127.0.0.1:{self.api_port}/readyz", timeout=10)
        assert response.status_code == 200, response.text
        body: dict[str, object] = response.json()
        return body


def find_uv() -> str:
    for candidate in (os.environ.get("UV"), shutil.which("uv"), f"{Path.home()}/.local/bin/uv"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("uv is not installed: run tools/bootstrap.sh")


def build(source: Path, sha: str, out: Path) -> Path:
    """deploy/build-artifact.sh, as the workflow runs it."""
    built = subprocess.run(
        [str(source / "deploy/build-artifact.sh"), "--out", str(out), "--sha", sha],
        cwd=source, capture_output=True, text=True, timeout=300, check=False,
        env=os.environ | {"UV": find_uv(), "UV_OFFLINE": "1"},
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    artifact = Path(built.stdout.strip().splitlines()[-1])
    assert artifact.name == f"obd2-dashboard-{sha}.tar.gz"
    return artifact


def copy_sources(destination: Path) -> Path:
    ignore = shutil.ignore_patterns(".venv", "node_modules", "__pycache__", "*.pyc", "tests")
    for name in SOURCES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=ignore)
        else:
            shutil.copy(source, destination / name)
    return destination


def add_marker_migration(source: Path) -> None:
    versions = source / "apps/dashboard-api/src/obd2_dashboard/migrations/versions"
    (versions / f"{E2E_REVISION}.py").write_text(
        textwrap.dedent(
            f'''
            """A migration of the e2e test's build B only."""
            import sqlalchemy as sa
            from alembic import op

            revision = "{E2E_REVISION}"
            down_revision = "{head_revision()}"
            branch_labels = None
            depends_on = None


            def upgrade() -> None:
                op.create_table("e2e_marker", sa.Column("id", sa.Integer(), primary_key=True))


            def downgrade() -> None:
                op.drop_table("e2e_marker")
            '''
        )
    )


def break_serve(source: Path) -> None:
    cli = source / "apps/dashboard-api/src/obd2_dashboard/cli.py"
    text = cli.read_text()
    marker = "    from obd2_dashboard.ops.serve import serve\n"
    assert marker in text
    cli.write_text(
        text.replace(marker, '    raise CommandError("this build is broken on purpose")\n' + marker)
    )


STAND_IN_SYSTEMCTL = """\
#!/usr/bin/env bash
# Stand-in for systemctl (systemd is not PID 1 in the test): `restart obd2-dashboard-api.service`
# stops the API this script started before and starts the current release's, as the unit would.
set -euo pipefail
[ "$1" = restart ] || {{ echo "stand-in systemctl: only restart" >&2; exit 1; }}
shift
for unit in "$@"; do
  [ "$unit" = obd2-dashboard-api.service ] || {{ echo "stand-in: unknown unit $unit" >&2; exit 1; }}
  if [ -f {state}/api.pid ]; then
    pid=$(cat {state}/api.pid)
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  cd {deploy_path}/current
  set -a
  . {env_file}
  set +a
  setsid nohup ./.venv/bin/obd2-dashboard serve --host 127.0.0.1 --port {port} \\
    >> {state}/api.log 2>&1 < /dev/null &
  echo $! > {state}/api.pid
done
"""


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[tuple[int, Path, Path]]:
    """(port, client key, known_hosts) of an sshd on 127.0.0.1 that lets that key in as root."""
    base = tmp_path / "sshd"
    base.mkdir()
    host_key, client_key = base / "host_ed25519", base / "client_ed25519"
    for key in (host_key, client_key):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
            check=True, timeout=60,
        )  # fmt: skip
    authorized = base / "authorized_keys"
    shutil.copy(client_key.with_suffix(".pub"), authorized)
    port = free_port()
    config = base / "sshd_config"
    config.write_text(
        textwrap.dedent(
            f"""
            ListenAddress 127.0.0.1
            Port {port}
            HostKey {host_key}
            PidFile {base}/sshd.pid
            AuthorizedKeysFile {authorized}
            PermitRootLogin prohibit-password
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            UsePAM no
            StrictModes no
            Subsystem sftp /usr/lib/openssh/sftp-server
            """
        )
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
    with (base / "sshd.log").open("w") as log:
        process = subprocess.Popen(
            [tool("sshd"), "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=log
        )
    try:
        deadline = time.monotonic() + 20
        while subprocess.run(
            ["ssh-keyscan", "-p", str(port), "127.0.0.1"], capture_output=True, timeout=10,
            check=False,
        ).returncode != 0:  # fmt: skip
            assert process.poll() is None, (base / "sshd.log").read_text()
            assert time.monotonic() < deadline, "sshd did not start"
            time.sleep(0.2)
        yield port, client_key, base / "known_hosts"
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def vps(sshd: tuple[int, Path, Path], pg_database: str, tmp_path: Path) -> Iterator[Vps]:
    port, key, known_hosts = sshd
    root = tmp_path / "vps"
    state = root / "state"
    state.mkdir(parents=True)
    prefix = f"obd2e2e:{uuid.uuid4().hex[:12]}:"
    backup_dir = root / "var/lib/obd2-dashboard/backups"
    env_file = root / "etc/obd2-dashboard.env"
    env_file.parent.mkdir(parents=True)
    env_file.write_text(
        textwrap.dedent(
            f"""
            OBD2_ENV=production
            DATABASE_URL={pg_url(pg_database)}
            REDIS_URL={REDIS_URL}
            REDIS_KEY_PREFIX={prefix}
            SESSION_SECRET=e2e-{"s" * 40}
            DATA_DIR={root}/var/lib/obd2-dashboard
            BACKUP_DIR={backup_dir}
            LOG_FORMAT=json
            """
        )
    )
    env_file.chmod(0o600)
    vps = Vps(port, key, known_hosts, root / "opt/obd2-dashboard", env_file, free_port(), state,
              backup_dir)  # fmt: skip
    systemctl = state / "systemctl"
    systemctl.write_text(
        STAND_IN_SYSTEMCTL.format(
            state=state, deploy_path=vps.deploy_path, env_file=env_file, port=vps.api_port
        )
    )
    systemctl.chmod(0o755)
    # This VPS's own deploy options, as an operator keeps them on the server.
    vps.deploy_path.mkdir(parents=True)
    (vps.deploy_path / "deploy.env").write_text(
        f"NO_COMPOSE=1\nALLOW_MISSING_REDIS_BOOTSTRAP=1\n"
        f"UNITS=obd2-dashboard-api.service\nSYSTEMCTL={systemctl}\n"
    )
    redis = Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        yield vps
    finally:
        pid_file = state / "api.pid"
        if pid_file.exists():
            subprocess.run(["kill", pid_file.read_text().strip()], check=False)
        keys = list(redis.scan_iter(match=f"{prefix}*"))
        if keys:
            redis.delete(*keys)
        redis.close()


def redis_snapshot(prefix: str) -> dict[str, str]:
    """Every key under the prefix with a dump of its value, whatever its type."""
    redis = Redis.from_url(REDIS_URL)
    try:
        return {
            key.decode(): (redis.dump(key) or b"").hex()
            for key in redis.scan_iter(match=f"{prefix}*")
        }
    finally:
        redis.close()


def redis_get(key: str) -> str | None:
    redis = Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        value = redis.get(key)
        return value if isinstance(value, str) else None
    finally:
        redis.close()


def test_deploys_keep_data_and_a_broken_release_is_rolled_back(
    vps: Vps, pg_database: str, tmp_path: Path
) -> None:
    url = pg_url(pg_database)
    upgrade_head(async_database_url(url))
    psql(url, "INSERT INTO users (email, password_hash, is_admin, created_at) "
              "VALUES ('survivor@example.com', 'x', false, now())")  # fmt: skip
    prefix = next(
        line.split("=", 1)[1]
        for line in vps.env_file.read_text().splitlines()
        if line.startswith("REDIS_KEY_PREFIX=")
    )
    redis = Redis.from_url(REDIS_URL, decode_responses=True)
    redis.set(f"{prefix}survivor", "still here")
    redis.close()

    def data_survived() -> None:
        assert psql(url, "SELECT email FROM users") == "survivor@example.com"
        assert redis_get(f"{prefix}survivor") == "still here"

    artifacts = tmp_path / "artifacts"
    artifact_a = build(REPO, SHA_A, artifacts)
    source_b = copy_sources(tmp_path / "src-b")
    add_marker_migration(source_b)
    artifact_b = build(source_b, SHA_B, artifacts)
    source_c = copy_sources(tmp_path / "src-c")
    add_marker_migration(source_c)
    break_serve(source_c)
    artifact_c = build(source_c, SHA_C, artifacts)

    # 1. First deploy: the database is at head already, so no backup is needed.
    first = vps.ship(artifact_a, "--readyz-timeout", "120")
    assert first.returncode == 0, first.stderr
    assert "no migration pending" in first.stderr
    assert vps.current_release().endswith(f"-{SHA_A[:12]}")
    assert vps.readyz()["git_sha"] == SHA_A
    data_survived()
    keys_after_first = redis_snapshot(prefix)

    # 2. A release with a migration: pre-migration backup, migrate, switch, ready.
    second = vps.ship(artifact_b, "--readyz-timeout", "120")
    assert second.returncode == 0, second.stderr
    assert "taking a pre-migration backup" in second.stderr
    backups = sorted(vps.backup_dir.glob("*-pre-migration.dump"))
    assert len(backups) == 1
    assert f"-rev.{head_revision()}-" in backups[0].name
    assert psql(url, "SELECT version_num FROM alembic_version") == E2E_REVISION
    assert vps.current_release().endswith(f"-{SHA_B[:12]}")
    assert vps.readyz()["git_sha"] == SHA_B
    data_survived()
    # Whatever redis-bootstrap did on the first deploy, doing it again changed nothing.
    assert redis_snapshot(prefix) == keys_after_first

    # 3. A release that never gets ready: rolled back, the previous one serves again.
    third = vps.ship(artifact_c, "--readyz-timeout", "20")
    assert third.returncode == 1
    assert "rolling back" in third.stderr
    assert "no migration ran in this deploy" in third.stderr
    assert vps.current_release().endswith(f"-{SHA_B[:12]}")
    assert vps.readyz()["git_sha"] == SHA_B
    data_survived()

    # No secret reaches a log: the API's (JSON, production) nor the deploy's output.
    secret = f"e2e-{'s' * 40}"
    # A request the access log records (health routes are left out of it).
    httpx.get(f"http://127.0.0.1:{vps.api_port}/api/v1/vehicles", timeout=10)
    # The server writes its access line after the answer has gone out: wait for it.
    wait_until(
        lambda: '"request_id"' in (vps.state / "api.log").read_text(), 30, "the access log line"
    )
    api_log = (vps.state / "api.log").read_text()
    for output in (api_log, first.stderr, second.stderr, third.stderr, first.stdout):
        assert secret not in output

    log = (vps.deploy_path / "revisions.log").read_text().splitlines()
    assert [line.split()[1] for line in log] == ["deployed", "deployed", "rolled-back"]
    assert f"backup={backups[0]}" in log[1]
    releases = sorted(p.name for p in (vps.deploy_path / "releases").iterdir())
    # --keep 2 pruned nothing yet that is needed: A (previous), B (current), C (failed, kept).
    assert any(name.endswith(SHA_B[:12]) for name in releases)
    assert (vps.deploy_path / "current/.venv/bin/obd2-dashboard").exists()


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    artifact = tmp_path / f"obd2-dashboard-{SHA_A}.tar.gz"
    artifact.write_bytes(b"not unpacked in a dry run")
    deploy_path = tmp_path / "opt"
    shown = subprocess.run(
        [str(REPO / "deploy/deploy.sh"), "--artifact", str(artifact), "--deploy-path",
         str(deploy_path), "--dry-run"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    for step in ("backup --pre-migration", "migrate", "redis-bootstrap", "mv -T", "readyz"):
        assert step in shown.stdout
    assert not deploy_path.exists()


def test_bad_usage_exits_2(tmp_path: Path) -> None:
    deploy = str(REPO / "deploy/deploy.sh")
    artifact = tmp_path / f"obd2-dashboard-{SHA_A}.tar.gz"
    artifact.write_bytes(b"x")
    for args in ([], ["--artifact", str(tmp_path / "missing.tar.gz")],
                 ["--artifact", str(artifact), "--keep", "1"], ["--bogus"]):  # fmt: skip
        result = subprocess.run(
            [deploy, *args], capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 2, (args, result.stderr)


def test_scripts_pass_shellcheck() -> None:
    scripts = sorted(str(p) for p in [*REPO.glob("deploy/*.sh"), *REPO.glob("tools/*.sh")])
    checked = subprocess.run(
        [tool("shellcheck"), "--severity=info", *scripts],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout
