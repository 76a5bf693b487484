"""The deploy, end to end: artifacts built as the workflow builds them, shipped by deploy/ship.sh
over SSH to a "VPS" and deployed there by deploy/deploy.sh against the machine's PostgreSQL and a
Redis of the test's own that requires a password.

The VPS is an sshd on 127.0.0.1 that lets in one key, set up as the install guide sets up the
deploy key: `restrict,command="…/obd2-dashboard-receive DEPLOY_PATH"` (deploy/receive.sh, the
forced command), with a directory as DEPLOY_PATH. The client knows the server's host key
beforehand, as the workflow's SSH_KNOWN_HOSTS. The tests show that the key deploys and does
nothing else: no command, no shell, no forwarding, no scp; that a bad request writes nothing; and
that ship.sh refuses a host whose key it does not know.

systemd is not PID 1 here, so a stand-in for `systemctl` (written below) restarts the API the
way the unit would: it stops the process it started before and starts `obd2-dashboard serve`
from `current/` with the environment file. Everything else is the real thing.
"""

import getpass
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tarfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from redis import Redis

from infra.tests.conftest import REPO, find_uv, free_port, pg_url, psql, tool
from obd2_dashboard.ops.migrations import head_revision, upgrade_head
from obd2_dashboard.settings import async_database_url
from obd2_testkit.stack.processes import RedisServer, wait_until

SHA_A, SHA_B, SHA_C = "a" * 40, "b" * 40, "c" * 40
SOURCES = ("apps", "libs", "pyproject.toml", "uv.lock", "README.md", "infra", "deploy", "doc")
E2E_REVISION = "29990101_e2e_marker"


def build(source: Path, sha: str, out: Path) -> Path:
    """deploy/build-artifact.sh, as the workflow runs it, but API-only: the web UI's build needs
    npm's registry (tests reach loopback only); test_build_artifact.py covers that part."""
    built = subprocess.run(
        [str(source / "deploy/build-artifact.sh"), "--out", str(out), "--sha", sha, "--no-web"],
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
    marker = "def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:\n"
    assert marker in text
    cli.write_text(
        text.replace(marker, marker + '    raise CommandError("this build is broken on purpose")\n')
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


@dataclass
class Sshd:
    """The VPS's sshd, its deploy key restricted to the forced command receive.sh."""

    port: int
    key: Path
    known_hosts: Path
    deploy_path: Path
    user: str
    log: Path

    def ship_env(self, **extra: str) -> dict[str, str]:
        return os.environ | {
            "SSH_HOST": "127.0.0.1",
            "SSH_PORT": str(self.port),
            "SSH_USER": self.user,
            "SSH_KEY_FILE": str(self.key),
            "SSH_KNOWN_HOSTS_FILE": str(self.known_hosts),
        } | extra  # fmt: skip

    def ship(self, artifact: Path, *extra: str, **env: str) -> subprocess.CompletedProcess[str]:
        """What the deploy workflow's last step runs (deploy/ship.sh)."""
        return subprocess.run(
            [str(REPO / "deploy/ship.sh"), str(artifact), *extra],
            env=self.ship_env(**env), capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip

    def ssh_options(self) -> list[str]:
        return [
            "-i", str(self.key), "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
            "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={self.known_hosts}",
            "-o", "GlobalKnownHostsFile=/dev/null", "-o", "ConnectTimeout=20",
        ]  # fmt: skip

    def ssh(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        """ssh with the deploy key, as anyone holding it could run it."""
        return subprocess.run(
            ["ssh", "-p", str(self.port), *self.ssh_options(), *args],
            input=stdin, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    @property
    def target(self) -> str:
        return f"{self.user}@127.0.0.1"


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    """An sshd on 127.0.0.1 that lets in the deploy key as the current user, restricted to the
    forced command deploy/receive.sh with DEPLOY_PATH tmp_path/vps/opt/obd2-dashboard."""
    base = tmp_path / "sshd"
    base.mkdir()
    host_key, client_key = base / "host_ed25519", base / "deploy_ed25519"
    for key in (host_key, client_key):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
            check=True, timeout=60,
        )  # fmt: skip
    deploy_path = tmp_path / "vps/opt/obd2-dashboard"
    receive = REPO / "deploy/receive.sh"
    authorized = base / "authorized_keys"
    authorized.write_text(
        f'restrict,command="{receive} {deploy_path}" '
        f"{client_key.with_suffix('.pub').read_text().strip()}\n"
    )
    port = free_port()
    # What the workflow writes from SSH_KNOWN_HOSTS: the server's key, known beforehand.
    known_hosts = base / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_key.with_suffix('.pub').read_text()}")
    config = base / "sshd_config"
    # Forwarding and sftp are on for the server: the key's `restrict` is what refuses them.
    config.write_text(
        textwrap.dedent(
            f"""
            ListenAddress 127.0.0.1
            Port {port}
            HostKey {host_key}
            PidFile {base}/sshd.pid
            AuthorizedKeysFile {authorized}
            PermitRootLogin forced-commands-only
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            UsePAM no
            StrictModes no
            AllowTcpForwarding yes
            AllowStreamLocalForwarding yes
            PermitTTY yes
            Subsystem sftp internal-sftp
            """
        )
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation (root only)
    log = base / "sshd.log"
    with log.open("w") as handle:
        process = subprocess.Popen(
            [tool("sshd"), "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=handle
        )
    try:
        deadline = time.monotonic() + 20
        while subprocess.run(
            ["ssh-keyscan", "-p", str(port), "127.0.0.1"], capture_output=True, timeout=10,
            check=False,
        ).returncode != 0:  # fmt: skip
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "sshd did not start"
            time.sleep(0.2)
        yield Sshd(port, client_key, known_hosts, deploy_path, getpass.getuser(), log)
    finally:
        process.terminate()
        process.wait(timeout=30)


@dataclass
class Vps:
    sshd: Sshd
    env_file: Path
    api_port: int
    state: Path
    backup_dir: Path
    redis_url: str
    secrets: tuple[str, ...]

    @property
    def deploy_path(self) -> Path:
        return self.sshd.deploy_path

    def option(self, name: str, value: str) -> None:
        """Sets one of this VPS's deploy options (DEPLOY_PATH/deploy.env), as its operator."""
        path = self.deploy_path / "deploy.env"
        lines = [line for line in path.read_text().splitlines() if not line.startswith(f"{name}=")]
        path.write_text("\n".join([*lines, f"{name}={value}"]) + "\n")

    def current_release(self) -> str:
        return os.readlink(self.deploy_path / "current")

    def readyz(self) -> dict[str, object]:
        response = httpx.get(f"http://127.0.0.1:{self.api_port}/readyz", timeout=10)
        assert response.status_code == 200, response.text
        body: dict[str, object] = response.json()
        return body


def with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    netloc = f"{parts.username}:{password}@{parts.hostname}:{parts.port or 5432}"
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture
def vps(sshd: Sshd, pg_database: str, tmp_path: Path) -> Iterator[Vps]:
    root = tmp_path / "vps"
    state = root / "state"
    state.mkdir(parents=True)
    # Production settings as check-env wants them: long secrets, Redis with a password. (The
    # machine's PostgreSQL lets the test's user in without one and ignores it.)
    redis_password, db_password = secrets.token_hex(16), secrets.token_hex(16)
    session_secret = f"e2e-{secrets.token_hex(24)}"
    redis_dir = root / "redis"
    redis_dir.mkdir()
    redis = RedisServer(free_port(), redis_dir, password=redis_password)
    redis.start()
    backup_dir = root / "var/lib/obd2-dashboard/backups"
    env_file = root / "etc/obd2-dashboard.env"
    env_file.parent.mkdir(parents=True)
    env_file.write_text(
        textwrap.dedent(
            f"""
            OBD2_ENV=production
            DATABASE_URL={with_password(pg_url(pg_database), db_password)}
            REDIS_URL={redis.url}
            REDIS_KEY_PREFIX=obd2e2e:
            SESSION_SECRET={session_secret}
            DATA_DIR={root}/var/lib/obd2-dashboard
            BACKUP_DIR={backup_dir}
            LOG_FORMAT=json
            """
        )
    )
    env_file.chmod(0o600)
    vps = Vps(sshd, env_file, free_port(), state, backup_dir, redis.url,
              (redis_password, db_password, session_secret))  # fmt: skip
    systemctl = state / "systemctl"
    systemctl.write_text(
        STAND_IN_SYSTEMCTL.format(
            state=state, deploy_path=vps.deploy_path, env_file=env_file, port=vps.api_port
        )
    )
    systemctl.chmod(0o755)
    # This VPS's own deploy options, as an operator keeps them on the server: the deploy key's
    # forced command passes nothing from the client but the artifact and --dry-run.
    vps.deploy_path.mkdir(parents=True)
    (vps.deploy_path / "deploy.env").write_text(
        textwrap.dedent(
            f"""\
            NO_COMPOSE=1
            ALLOW_MISSING_REDIS_BOOTSTRAP=1
            UNITS=obd2-dashboard-api.service
            SYSTEMCTL={systemctl}
            ENV_FILE={env_file}
            READYZ_URL=http://127.0.0.1:{vps.api_port}/readyz
            READYZ_TIMEOUT=120
            PYTHON={Path(sys.base_prefix) / "bin/python3"}
            UV={find_uv()}
            OFFLINE=1
            KEEP_RELEASES=2
            """
        )
    )
    try:
        yield vps
    finally:
        pid_file = state / "api.pid"
        if pid_file.exists():
            subprocess.run(["kill", pid_file.read_text().strip()], check=False)
        redis.kill()


def redis_snapshot(url: str, prefix: str) -> dict[str, str]:
    """Every key under the prefix with a dump of its value, whatever its type."""
    redis = Redis.from_url(url)
    try:
        return {
            key.decode(): (redis.dump(key) or b"").hex()
            for key in redis.scan_iter(match=f"{prefix}*")
        }
    finally:
        redis.close()


def redis_get(url: str, key: str) -> str | None:
    redis = Redis.from_url(url, decode_responses=True)
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
    prefix = "obd2e2e:"
    redis = Redis.from_url(vps.redis_url, decode_responses=True)
    redis.set(f"{prefix}survivor", "still here")
    redis.close()

    def data_survived() -> None:
        assert psql(url, "SELECT email FROM users") == "survivor@example.com"
        assert redis_get(vps.redis_url, f"{prefix}survivor") == "still here"

    artifacts = tmp_path / "artifacts"
    artifact_a = build(REPO, SHA_A, artifacts)
    source_b = copy_sources(tmp_path / "src-b")
    add_marker_migration(source_b)
    artifact_b = build(source_b, SHA_B, artifacts)
    source_c = copy_sources(tmp_path / "src-c")
    add_marker_migration(source_c)
    break_serve(source_c)
    artifact_c = build(source_c, SHA_C, artifacts)
    ship = vps.sshd.ship

    # 0. A dry run through the forced command: every step shown, nothing deployed.
    dry = ship(artifact_a, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "deploy (dry run): nothing is changed" in dry.stdout
    assert not (vps.deploy_path / "releases").exists()

    # 1. First deploy: the database is at head already, so no backup is needed.
    first = ship(artifact_a)
    assert first.returncode == 0, first.stderr
    assert "no migration pending" in first.stderr
    assert vps.current_release().endswith(f"-{SHA_A[:12]}")
    assert vps.readyz()["git_sha"] == SHA_A
    data_survived()
    keys_after_first = redis_snapshot(vps.redis_url, prefix)

    # 2. check-env warns (here: Redis without its password): the deploy stops before migrating.
    good_env = vps.env_file.read_text()
    vps.env_file.write_text(re.sub(r"redis://:[^@]+@", "redis://", good_env))
    refused = ship(artifact_b)
    vps.env_file.write_text(good_env)
    assert refused.returncode == 1
    assert "check-env: warning: REDIS_URL has no password" in refused.stderr
    assert "check-env found problems" in refused.stderr
    assert "Nothing was migrated" in refused.stderr
    assert psql(url, "SELECT version_num FROM alembic_version") == head_revision()
    assert not vps.backup_dir.exists() or not list(vps.backup_dir.glob("*.dump"))
    assert vps.current_release().endswith(f"-{SHA_A[:12]}")
    assert len(list((vps.deploy_path / "releases").iterdir())) == 1  # B's was removed

    # 3. A release with a migration: pre-migration backup, migrate, switch, ready.
    second = ship(artifact_b)
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
    assert redis_snapshot(vps.redis_url, prefix) == keys_after_first

    # 4. A release that never gets ready: rolled back, the previous one serves again.
    vps.option("READYZ_TIMEOUT", "20")
    third = ship(artifact_c)
    assert third.returncode == 1
    assert "rolling back" in third.stderr
    assert "no migration ran in this deploy" in third.stderr
    assert vps.current_release().endswith(f"-{SHA_B[:12]}")
    assert vps.readyz()["git_sha"] == SHA_B
    data_survived()

    # No secret reaches a log: the API's (JSON, production) nor the deploy's output.
    # A request the access log records (health routes are left out of it).
    httpx.get(f"http://127.0.0.1:{vps.api_port}/api/v1/vehicles", timeout=10)
    # The server writes its access line after the answer has gone out: wait for it.
    wait_until(
        lambda: '"request_id"' in (vps.state / "api.log").read_text(), 30, "the access log line"
    )
    api_log = (vps.state / "api.log").read_text()
    outputs = [api_log, *(r.stdout + r.stderr for r in (dry, first, refused, second, third))]
    for secret in vps.secrets:
        for output in outputs:
            assert secret not in output

    log = (vps.deploy_path / "revisions.log").read_text().splitlines()
    assert [line.split()[1] for line in log] == ["deployed", "deployed", "rolled-back"]
    assert f"backup={backups[0]}" in log[1]
    releases = sorted(p.name for p in (vps.deploy_path / "releases").iterdir())
    # --keep 2 pruned nothing yet that is needed: A (previous), B (current), C (failed, kept).
    assert any(name.endswith(SHA_B[:12]) for name in releases)
    assert (vps.deploy_path / "current/.venv/bin/obd2-dashboard").exists()
    # The received artifacts, renamed into place; nothing half-received is left.
    incoming = sorted(p.name for p in (vps.deploy_path / "incoming").iterdir())
    assert incoming == [".receive.lock", *(a.name for a in (artifact_a, artifact_b, artifact_c))]


def tiny_artifact(directory: Path, sha: str = SHA_A) -> Path:
    """An artifact as far as its name and layout go (enough for refusals and dry runs)."""
    top = directory / f"obd2-dashboard-{sha}"
    (top / "deploy").mkdir(parents=True)
    (top / "REVISION").write_text(f"{sha}\n")
    shutil.copy(REPO / "deploy/deploy.sh", top / "deploy/deploy.sh")
    artifact = directory / f"obd2-dashboard-{sha}.tar.gz"
    with tarfile.open(artifact, "w:gz") as tar:
        tar.add(top, arcname=top.name)
    return artifact


def nothing_written(sshd: Sshd) -> bool:
    return not sshd.deploy_path.exists()


def test_the_deploy_key_runs_no_command_and_no_shell(sshd: Sshd) -> None:
    command = sshd.ssh(sshd.target, "id")
    assert command.returncode == 2
    assert "uid=" not in command.stdout
    assert "receive: refused: this key only deploys" in command.stderr
    shell = sshd.ssh("-T", sshd.target, stdin="id\necho shell-ran\n")
    assert shell.returncode == 2
    assert "uid=" not in shell.stdout
    assert "shell-ran" not in shell.stdout
    assert "no shell" in shell.stderr
    # A deploy request with a command smuggled after it is no deploy request.
    smuggled = sshd.ssh(sshd.target, f"deploy obd2-dashboard-{SHA_A}.tar.gz; id")
    assert smuggled.returncode == 2
    assert "uid=" not in smuggled.stdout
    assert nothing_written(sshd)


def test_the_deploy_key_forwards_no_port(sshd: Sshd) -> None:
    with socket.create_server(("127.0.0.1", free_port())) as listener:
        listener.setblocking(False)
        target_port = listener.getsockname()[1]
        # ssh -W: the server would connect to the target port for us.
        stdio = sshd.ssh("-W", f"127.0.0.1:{target_port}", sshd.target)
        assert stdio.returncode != 0
        assert "administratively prohibited" in stdio.stderr
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing ever connected
        # ssh -R: the server would listen on a port of its own and forward it to us.
        remote_port = free_port()
        remote = sshd.ssh(
            "-N", "-o", "ExitOnForwardFailure=yes",
            "-R", f"127.0.0.1:{remote_port}:127.0.0.1:{target_port}", sshd.target,
        )  # fmt: skip
        assert remote.returncode == 255
        assert "remote port forwarding failed" in remote.stderr
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", remote_port), timeout=5).close()
    assert nothing_written(sshd)


def test_the_deploy_key_copies_no_file(sshd: Sshd, tmp_path: Path) -> None:
    payload = tmp_path / "payload"
    payload.write_text("copied\n")
    stolen = tmp_path / "stolen"
    copies = {
        "scp over sftp": ["scp", str(payload), f"{sshd.target}:{tmp_path}/dropped"],
        "scp, the old protocol": ["scp", "-O", str(payload), f"{sshd.target}:{tmp_path}/dropped"],
        "scp from the server": ["scp", f"{sshd.target}:{payload}", str(stolen)],
    }
    for what, (scp, *args) in copies.items():
        copied = subprocess.run(
            [scp, "-P", str(sshd.port), *sshd.ssh_options(), *args],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert copied.returncode != 0, what
    sftp = subprocess.run(
        ["sftp", "-P", str(sshd.port), *sshd.ssh_options(), "-b", "-", sshd.target],
        input=f"put {payload} {tmp_path}/dropped\n",
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert sftp.returncode != 0
    assert not (tmp_path / "dropped").exists()
    assert not stolen.exists()
    assert nothing_written(sshd)


@pytest.mark.parametrize(
    "request_",
    [
        "deploy ../obd2-dashboard-aaaaaaa.tar.gz",
        "deploy /etc/cron.d/obd2-dashboard-aaaaaaa.tar.gz",
        "deploy obd2-dashboard-AAAAAAA.tar.gz",
        "deploy obd2-dashboard-aaaaaa.tar.gz",
        f"deploy obd2-dashboard-{SHA_A}.tar.gz --force",
        f"deploy  obd2-dashboard-{SHA_A}.tar.gz",
        f"deploy obd2-dashboard-{SHA_A}.tgz",
        "deploy",
    ],
)
def test_a_bad_request_is_refused_before_anything_is_written(sshd: Sshd, request_: str) -> None:
    refused = sshd.ssh(sshd.target, request_, stdin="not read\n")
    assert refused.returncode == 2, refused.stderr
    assert "receive: refused:" in refused.stderr
    assert nothing_written(sshd)


def test_ship_refuses_a_host_whose_key_it_does_not_know(sshd: Sshd, tmp_path: Path) -> None:
    artifact = tiny_artifact(tmp_path / "build")
    # Another server's key for this address: a man in the middle, or a host not checked.
    other = tmp_path / "other_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)],
                   check=True, timeout=60)  # fmt: skip
    wrong = tmp_path / "wrong_known_hosts"
    wrong.write_text(f"[127.0.0.1]:{sshd.port} {other.with_suffix('.pub').read_text()}")
    changed = sshd.ship(artifact, "--dry-run", SSH_KNOWN_HOSTS_FILE=str(wrong))
    assert changed.returncode == 255
    assert "Host key verification failed" in changed.stderr
    # A host key that is not known at all is not learnt either.
    unknown = tmp_path / "unknown_known_hosts"
    unknown.write_text(f"[127.0.0.1]:{free_port()} {other.with_suffix('.pub').read_text()}")
    first_use = sshd.ship(artifact, "--dry-run", SSH_KNOWN_HOSTS_FILE=str(unknown))
    assert first_use.returncode == 255
    assert "Host key verification failed" in first_use.stderr
    assert str(sshd.port) not in unknown.read_text()
    # No file, an empty one, or none named: ship.sh says what is missing and connects nowhere.
    for known_hosts in (str(tmp_path / "missing"), os.devnull, ""):
        missing = sshd.ship(artifact, "--dry-run", SSH_KNOWN_HOSTS_FILE=known_hosts)
        assert missing.returncode == 2
        assert "SSH_KNOWN_HOSTS_FILE" in missing.stderr
    assert nothing_written(sshd)
    # The same artifact to the host whose key is known: received, and the dry run shown.
    sshd.deploy_path.mkdir(parents=True)
    (sshd.deploy_path / "deploy.env").write_text(f"UV={find_uv()}\n")
    known = sshd.ship(artifact, "--dry-run")
    assert known.returncode == 0, known.stderr
    assert "deploy (dry run): nothing is changed" in known.stdout
    assert (sshd.deploy_path / "incoming" / artifact.name).is_file()


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    artifact = tmp_path / f"obd2-dashboard-{SHA_A}.tar.gz"
    artifact.write_bytes(b"not unpacked in a dry run")
    deploy_path = tmp_path / "opt"
    shown = subprocess.run(
        [str(REPO / "deploy/deploy.sh"), "--artifact", str(artifact), "--deploy-path",
         str(deploy_path), "--uv", find_uv(), "--dry-run"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    for step in ("backup --pre-migration", "migrate", "redis-bootstrap", "mv -T", "readyz"):
        assert step in shown.stdout
    assert "check-env --file /etc/obd2-dashboard.env" in shown.stdout
    assert not deploy_path.exists()


def bootstrap_uv_version() -> str:
    found = re.search(r"^UV_VERSION=(\S+)$", (REPO / "tools/bootstrap.sh").read_text(), re.M)
    assert found
    return found.group(1)


def test_without_uv_for_the_deploy_user_it_says_how_to_install_one(tmp_path: Path) -> None:
    if os.access("/usr/local/bin/uv", os.X_OK):
        pytest.skip("this machine has /usr/local/bin/uv, which deploy.sh rightly takes")
    artifact = tiny_artifact(tmp_path)
    # A PATH without uv (the deploy user's: no ~/.local/bin), and no --uv.
    bare = tmp_path / "bin"
    bare.mkdir()
    for name in ("bash", "dirname", "basename", "readlink", "date", "cat", "id"):
        (bare / name).symlink_to(tool(name))
    shown = subprocess.run(
        [str(REPO / "deploy/deploy.sh"), "--artifact", str(artifact), "--deploy-path",
         str(tmp_path / "opt"), "--dry-run"],
        env={"PATH": str(bare), "HOME": str(Path.home())},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert shown.returncode == 1
    version = bootstrap_uv_version()
    hint = (
        f"python3 -m venv /opt/uv && /opt/uv/bin/pip install uv=={version} "
        "&& ln -s /opt/uv/bin/uv /usr/local/bin/uv"
    )
    assert hint in shown.stderr
    # The version the hint names is the one the project's tooling uses, in CI's deploy too.
    deploy_workflow = (REPO / ".github/workflows/deploy.yml").read_text()
    assert f'version: "{version}"' in deploy_workflow
    assert not (tmp_path / "opt").exists()


def test_uvs_reason_is_shown_when_it_cannot_make_the_virtualenv(tmp_path: Path) -> None:
    artifact = tiny_artifact(tmp_path / "build")
    (tmp_path / "env").write_text("")
    failed = subprocess.run(
        [str(REPO / "deploy/deploy.sh"), "--artifact", str(artifact), "--deploy-path",
         str(tmp_path / "opt"), "--uv", find_uv(), "--python", "/nonexistent/python3",
         "--env-file", str(tmp_path / "env"), "--no-compose"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert failed.returncode == 1
    assert "cannot make a virtualenv with /nonexistent/python3" in failed.stderr
    assert "No interpreter found" in failed.stderr  # uv's own words
    # The release that never became current is removed.
    assert list((tmp_path / "opt/releases").iterdir()) == []


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
