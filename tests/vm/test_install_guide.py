"""doc/ops-deploy.md, run as written on a fresh Debian 13 machine with systemd as PID 1.

Each test boots the cached image (``obd2_testkit.vm``) and runs every step of the guide, in
order, for one of its database paths: Debian's PostgreSQL and Redis, or docker compose. Server
steps run as root over SSH; workstation steps run here, in this checkout, with ``ssh``/``scp``
configured to reach the machine under the guide's DNS name. Then the test checks what the
guide promises.

What stands in for the world, and why:
- DNS: ``obd2.test`` is written into the machine's ``/etc/hosts`` (no DNS server here).
- Let's Encrypt: Debian's ``pebble`` (Let's Encrypt's test server) runs inside the machine and
  certbot is pointed at it through ``/etc/letsencrypt/cli.ini``; its certificates last 10 days,
  so that a real ``certbot renew`` renews them and the expiry alert has something to say.
- Docker Hub: unreachable, so the compose path runs on stand-in images imported from a Debian 12
  root with ``postgresql`` and ``redis-server`` (``tools/vm-image.sh``), named by
  ``POSTGRES_IMAGE``/``REDIS_IMAGE`` in the compose env file.
- A webhook receiver and an MQTT broker outside the machine: on this host, reached from the
  machine at ``10.0.2.2`` (qemu user networking), opened with ``OUTBOUND_ALLOW_CIDRS``.
The machine runs under software emulation, 5-10x slower than this host: the deploys wait
``READYZ_TIMEOUT=240`` s (deploy.env) instead of 60.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shlex
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import aiomqtt
import httpx
import pytest
from websockets.sync.client import connect
from websockets.typing import Origin

from obd2_testkit import REPO
from obd2_testkit.guide import Step, read_guide
from obd2_testkit.ports import free_port
from obd2_testkit.vm import HOST_FROM_GUEST, Machine, build_image, why_not_runnable

GUIDE = REPO / "doc" / "ops-deploy.md"
DOMAIN = "obd2.test"
EMAIL = "ops@example.com"
PASSWORD = "vm test operator passphrase"
# Ports forwarded from 127.0.0.1 here: SSH, HTTP, HTTPS, and the ones that must not answer.
GUEST_PORTS = (22, 80, 443, 5432, 6379, 8000)
SECURITY_HEADERS = (
    "strict-transport-security",
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
    "content-security-policy",
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.vm,
    pytest.mark.timeout(3600),
    pytest.mark.xdist_group("vm"),
]


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    reason = why_not_runnable()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the install-guide test cannot run here: {reason}")
        pytest.skip(reason)
    return build_image(tmp_path_factory.mktemp("vm-image") / "build.log")


# -- the world around the machine ----------------------------------------------------------------


class Receiver(ThreadingHTTPServer):
    """The webhook receiver outside the machine: keeps every POST body."""

    daemon_threads = True

    def __init__(self) -> None:
        self.bodies: list[dict[str, object]] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                received.append(json.loads(self.rfile.read(length) or b"{}"))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", free_port()), Handler)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@dataclass
class Install:
    machine: Machine
    home: Path  # the workstation's home: ~/.ssh/obd2_deploy, known_hosts
    bin: Path  # ssh and scp that reach the machine under DOMAIN
    timings: dict[str, float] = field(default_factory=dict)
    ca: Path | None = None

    def workstation_env(self) -> dict[str, str]:
        env = dict(os.environ)
        # The workstation's own tools (uv, npm) stay on PATH with the home directory changed.
        uv = shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
        env.update(
            HOME=str(self.home),
            PATH=f"{self.bin}:{Path(uv).parent}:{env['PATH']}",
            OBD2_DOMAIN=DOMAIN,
            OBD2_EMAIL=EMAIL,
        )
        return env

    def run_step(self, step: Step, stdin: str | None = None) -> None:
        started = time.monotonic()
        if step.on == "workstation":
            result = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", step.script],
                cwd=REPO,
                env=self.workstation_env(),
                input=stdin,
                capture_output=True,
                text=True,
                timeout=1800,
                check=False,
            )
            assert result.returncode == 0, (
                f"guide step {step.name!r} (line {step.line}, workstation) failed:\n"
                f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
            )
        else:
            script = f"export OBD2_DOMAIN={DOMAIN} OBD2_EMAIL={EMAIL}\n{step.script}"
            if step.user != "root":
                script = f"runuser -u {step.user} -- bash -euo pipefail -c {shlex.quote(script)}"
            self.machine.run(
                script, timeout=1800, stdin=stdin.encode() if stdin is not None else None
            )
        self.timings[step.name] = round(time.monotonic() - started, 1)

    def ship(self, artifact: Path) -> subprocess.CompletedProcess[str]:
        """deploy/ship.sh as the guide runs it (section 7), for another artifact."""
        env = self.workstation_env()
        env.update(
            SSH_HOST=DOMAIN,
            SSH_USER="deploy",
            SSH_KEY_FILE=str(self.home / ".ssh" / "obd2_deploy"),
            SSH_KNOWN_HOSTS_FILE=str(self.home / ".ssh" / "known_hosts"),
        )
        return subprocess.run(
            ["bash", str(REPO / "deploy" / "ship.sh"), str(artifact)],
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )

    # -- clients of the site, through the forwarded ports, under the site's name
    def ssl_context(self) -> ssl.SSLContext:
        assert self.ca is not None
        return ssl.create_default_context(cafile=str(self.ca))

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=f"https://127.0.0.1:{self.machine.forwards[443]}",
            transport=_NamedTransport(verify=self.ssl_context()),
            headers={"Host": DOMAIN},
            timeout=60,
        )


class _NamedTransport(httpx.HTTPTransport):
    """Connects to the forwarded port but speaks TLS to the site's name (SNI and verification)."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.extensions["sni_hostname"] = DOMAIN
        return super().handle_request(request)


def _prepare_workstation(machine: Machine, base: Path) -> Install:
    home = base / "home"
    (home / ".ssh").mkdir(parents=True, mode=0o700)
    shutil.copy(machine.workdir / "known_hosts", home / ".ssh" / "known_hosts")
    config = home / ".ssh" / "config"
    config.write_text(
        f"Host {DOMAIN}\n"
        f"  HostName 127.0.0.1\n  Port {machine.forwards[22]}\n"
        f"  IdentityFile {machine.key}\n  IdentitiesOnly yes\n  BatchMode yes\n"
        f"  UserKnownHostsFile {home / '.ssh' / 'known_hosts'}\n"
        "  StrictHostKeyChecking yes\n  LogLevel ERROR\n"
    )
    # OpenSSH reads ~/.ssh/config from the passwd entry's home, not $HOME: name the file.
    bin_dir = base / "bin"
    bin_dir.mkdir()
    for tool in ("ssh", "scp"):
        shim = bin_dir / tool
        shim.write_text(f'#!/bin/sh\nexec /usr/bin/{tool} -F "{config}" "$@"\n')
        shim.chmod(0o755)
    return Install(machine=machine, home=home, bin=bin_dir)


def _prepare_world(machine: Machine) -> None:
    """DNS for the site's name, and a Let's Encrypt: pebble, trusted by certbot (world.sh)."""
    for authority in Path("/usr/local/share/ca-certificates").glob("*.crt"):
        machine.run(
            f"cat > /usr/local/share/ca-certificates/{authority.name}",
            stdin=authority.read_bytes(),
        )
    world = (Path(__file__).parent / "world.sh").read_text()
    machine.run(f"DOMAIN={DOMAIN}\n{world}", timeout=1800)


def _fetch_ca(install: Install, directory: Path) -> None:
    """Pebble's root of the certificates it issues (it makes a new one at each start), trusted
    here as a public CA is; and the workstation's curl, which reaches the site by its name."""
    pem = install.machine.run("curl -fsS https://localhost:15000/roots/0").stdout
    install.ca = directory / "pebble-root.pem"
    install.ca.write_text(pem)
    forwards = install.machine.forwards
    shim = install.bin / "curl"
    shim.write_text(
        "#!/bin/sh\n"
        f"exec /usr/bin/curl --connect-to {DOMAIN}:443:127.0.0.1:{forwards[443]} "
        f'--connect-to {DOMAIN}:80:127.0.0.1:{forwards[80]} --cacert {install.ca} "$@"\n'
    )
    shim.chmod(0o755)


def _boot(image: Path, workdir: Path) -> Machine:
    machine = Machine(image=image, workdir=workdir, guest_ports=GUEST_PORTS)
    machine.start()
    machine.wait_for_ssh(timeout=600)
    return machine


def _what_failed(machine: Machine) -> str:
    """The machine's failed units and the end of their journals: a step's own output often
    says only "see journalctl", and the machine is gone once the test ends."""
    report = machine.run(
        "systemctl --failed --no-legend --plain | cut -d' ' -f1 | while read -r unit; do\n"
        '  echo "=== $unit"\n'
        '  journalctl -u "$unit" -n 60 --no-pager -o cat\n'
        "done\n"
        "echo '=== obd2-dashboard units, last lines'\n"
        "journalctl -u 'obd2-dashboard-*' -n 40 --no-pager -o short-monotonic\n",
        check=False,
        timeout=120,
    )
    return f"--- what failed on the machine\n{report.stdout[-12000:]}{report.stderr[-2000:]}"


@contextlib.contextmanager
def _installing(image: Path, tmp_path: Path) -> Iterator[Install]:
    """A booted machine in its world (DNS, pebble) and a workstation that reaches it; the
    timings of what ran are printed at the end, whatever happened."""
    machine = _boot(image, tmp_path / "machine")
    install = _prepare_workstation(machine, tmp_path)
    try:
        started = time.monotonic()
        _prepare_world(machine)
        _fetch_ca(install, tmp_path)
        install.timings["boot-and-world"] = round(time.monotonic() - started, 1)
        yield install
    except BaseException:
        with contextlib.suppress(Exception):  # a machine that stopped answering tells nothing
            print(_what_failed(machine))
        raise
    finally:
        print("timings (s):", json.dumps(install.timings))
        machine.stop()


def _run_guide(install: Install, path: str, *, after: dict[str, str] | None = None) -> None:
    """Every step of the guide for ``path``; ``after[name]`` runs on the server after that step."""
    guide = read_guide(GUIDE)
    for step in guide.for_path(path):
        stdin = f"{PASSWORD}\n" if step.stdin == "password" else None
        assert step.stdin in (None, "password"), f"the test cannot answer stdin={step.stdin}"
        install.run_step(step, stdin=stdin)
        if after and step.name in after:
            install.machine.run(after[step.name])


def _operator_settings(prefix: str) -> str:
    """What an operator sets for this test: the webhook and MQTT receivers outside the machine."""
    settings = {
        "OUTBOUND_ALLOW_CIDRS": f"{HOST_FROM_GUEST}/32",
        "MQTT_URL": f"mqtt://{HOST_FROM_GUEST}:1883",
        "MQTT_TOPIC_PREFIX": prefix,
    }
    return "\n".join(
        f"sed -i -e '/^#* *{key}=/d' /etc/obd2-dashboard.env\n"
        f"echo '{key}={value}' >> /etc/obd2-dashboard.env"
        for key, value in settings.items()
    )


SLOW_MACHINE = "echo READYZ_TIMEOUT=240 >> /opt/obd2-dashboard/deploy.env"


# -- what the guide promises ---------------------------------------------------------------------


def _sign_in(client: httpx.Client) -> None:
    response = client.post("/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD})
    assert response.status_code == 200, response.text
    client.headers["X-CSRF-Token"] = client.cookies["obd2_csrf"]


def _vehicle_and_device(install: Install) -> tuple[int, str]:
    created = install.machine.run(
        f"obd2-dashboard create-vehicle --owner {EMAIL} --name 'Test car' --json"
    ).stdout
    vehicle_id = int(json.loads(created)["vehicle_id"])
    device = install.machine.run(
        f"obd2-dashboard create-device --vehicle {vehicle_id} --name agent --json"
    ).stdout
    return vehicle_id, str(json.loads(device)["token"])


def _ingest(
    client: httpx.Client,
    token: str,
    first_seq: int,
    values: list[tuple[str, float]],
    ahead_ms: int = 0,
) -> None:
    now = int(time.time() * 1000) + ahead_ms
    samples = [
        {"seq": first_seq + n, "ts": now + n, "pid": pid, "value": value}
        for n, (pid, value) in enumerate(values)
    ]
    response = client.post(
        "/api/v1/ingest",
        json={"samples": samples},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text


def _sample_count(install: Install) -> int:
    out = install.machine.run(
        "runuser -u postgres -- psql -d obd2 -Atc 'SELECT count(*) FROM samples'"
        if install.machine.run("systemctl is-active postgresql", check=False).stdout.strip()
        == "active"
        else "docker exec obd2-dashboard-postgres-1 psql -U obd2 -d obd2 -Atc "
        "'SELECT count(*) FROM samples'"
    ).stdout
    return int(out.strip())


def _wait(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(1)


def _check_site(install: Install, vehicle_id: int, token: str) -> None:
    """HTTPS with HSTS, the redirect, the web UI, every location's headers, SSE and a WebSocket."""
    plain = httpx.get(
        f"http://127.0.0.1:{install.machine.forwards[80]}/trips?x=1",
        headers={"Host": "attacker.example"},
        timeout=30,
    )
    assert plain.status_code == 301
    assert plain.headers["location"] == f"https://{DOMAIN}/trips?x=1"
    assert "nginx/" not in plain.headers.get("server", "")

    with install.client() as client:
        index = client.get("/")
        assert index.status_code == 200
        assert "<div id=" in index.text
        asset = next(part.split('"')[0] for part in index.text.split('src="/assets/')[1:])
        locations = {
            "/": index,
            f"/assets/{asset}": client.get(f"/assets/{asset}"),
            "/assets/missing.js": client.get("/assets/missing.js"),
            "/healthz": client.get("/healthz"),
            "/readyz": client.get("/readyz"),
            "/metrics": client.get("/metrics"),
            "/api/v1/auth/me": client.get("/api/v1/auth/me"),
            "/api/v1/torque": client.get("/api/v1/torque"),
        }
        for url, response in locations.items():
            missing = [h for h in SECURITY_HEADERS if h not in response.headers]
            assert not missing, f"{url} ({response.status_code}) lacks {missing}"
        assert locations["/metrics"].status_code == 404
        assert "immutable" in locations[f"/assets/{asset}"].headers["cache-control"]
        assert "immutable" not in locations["/assets/missing.js"].headers.get("cache-control", "")
        assert locations["/readyz"].status_code == 200, locations["/readyz"].text

        _sign_in(client)
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        # SSE through nginx: a sample ingested now arrives on the stream.
        with client.stream("GET", f"/api/v1/streams/vehicles/{vehicle_id}") as stream:
            _ingest(client, token, 1000, [("RPM", 1234.0)])
            for line in stream.iter_lines():
                if line.startswith("data:") and "1234" in line:
                    break

    # A browser's WebSocket: the site's Origin, through nginx, with the session cookie.
    raw = socket.create_connection(("127.0.0.1", install.machine.forwards[443]), timeout=60)
    with connect(
        f"wss://{DOMAIN}/api/v1/streams/ws",
        sock=raw,
        ssl=install.ssl_context(),
        server_hostname=DOMAIN,
        origin=Origin(f"https://{DOMAIN}"),
        additional_headers={"Cookie": cookie},
        open_timeout=60,
    ) as ws:
        ws.send(json.dumps({"type": "subscribe", "vehicle_id": vehicle_id}))
        assert json.loads(ws.recv(timeout=60))["type"] == "subscribed"
        with install.client() as client:
            _ingest(client, token, 1001, [("RPM", 2345.0)])
        deadline = time.monotonic() + 60
        while "2345" not in ws.recv(timeout=max(1.0, deadline - time.monotonic())):
            pass


def _check_closed(install: Install) -> None:
    """PostgreSQL, Redis and the API listen on loopback only; Redis asks for a password."""

    def first_bytes(guest: int) -> bytes:
        # qemu accepts on this side, then connects to the machine's own address: nothing there
        # (or the firewall's silence) gives an empty read, a reset or no answer at all.
        address = ("127.0.0.1", install.machine.forwards[guest])
        with socket.create_connection(address, timeout=10) as connection:
            connection.settimeout(10)
            with contextlib.suppress(ConnectionResetError, TimeoutError):
                connection.sendall(b"PING\r\n")
                return connection.recv(64)
        return b""

    # The probe can tell an open port: sshd greets whoever connects.
    assert first_bytes(22).startswith(b"SSH-2.0")
    for guest in (5432, 6379, 8000):
        assert first_bytes(guest) == b"", f"port {guest} answered from outside the machine"
    out = install.machine.run("redis-cli -h 127.0.0.1 ping", check=False)
    assert "NOAUTH" in out.stdout + out.stderr


# -- the tests -----------------------------------------------------------------------------------


def test_guide_with_debian_packages(image: Path, tmp_path: Path, receiver: Receiver) -> None:
    with _installing(image, tmp_path) as install:
        machine = install.machine
        started = time.monotonic()
        prefix = f"obd2vm{secrets.token_hex(4)}"
        _run_guide(
            install,
            "packages",
            after={"settings": _operator_settings(prefix), "unpack": SLOW_MACHINE},
        )
        install.timings["guide"] = round(time.monotonic() - started, 1)

        # The units run, and are enabled for the next boot.
        units = "obd2-dashboard-api obd2-dashboard-worker nginx postgresql redis-server"
        machine.run(f"systemctl is-active {units} && systemctl is-enabled {units}")
        machine.run(
            "systemctl is-enabled obd2-dashboard-backup.timer"
            " obd2-dashboard-restore-drill.timer certbot.timer"
        )
        drill = json.loads(
            machine.run("cat /var/lib/obd2-dashboard/backups/restore-drill.json").stdout
        )
        assert drill.get("ok") is True, drill

        vehicle_id, token = _vehicle_and_device(install)
        _check_site(install, vehicle_id, token)
        _check_closed(install)
        _check_webhook_and_mqtt(install, vehicle_id, token, receiver, prefix)
        _check_renewal(install)
        _check_deploys(install, tmp_path, vehicle_id, token)

        started = time.monotonic()
        machine.reboot(timeout=600)
        install.timings["reboot"] = round(time.monotonic() - started, 1)
        _wait(
            lambda: (
                machine.run(
                    "systemctl is-active obd2-dashboard-api obd2-dashboard-worker nginx",
                    check=False,
                ).returncode
                == 0
            ),
            300,
            "the units after the reboot",
        )
        with install.client() as client:
            _wait(lambda: client.get("/readyz").status_code == 200, 300, "/readyz after the reboot")
        assert _sample_count(install) >= 2


def _check_webhook_and_mqtt(
    install: Install, vehicle_id: int, token: str, receiver: Receiver, prefix: str
) -> None:

    with install.client() as client:
        _sign_in(client)
        rule = client.post(
            f"/api/v1/vehicles/{vehicle_id}/alert-rules",
            json={
                "name": "Coolant hot",
                "kind": "threshold",
                "pid": "COOLANT_TEMP",
                "op": "above",
                "threshold": 105,
                "webhook_url": f"http://{HOST_FROM_GUEST}:{receiver.server_address[1]}/hook",
            },
        )
        assert rule.status_code == 201, rule.text

        async def first_message() -> str:
            async with aiomqtt.Client("127.0.0.1", 1883) as mqtt:
                await mqtt.subscribe(f"{prefix}/#")
                # A rule reads samples from its making on, by the server's clock: a minute
                # ahead, so that the machine's clock running ahead of this host's does not matter.
                hot = [("COOLANT_TEMP", 120.0), ("COOLANT_TEMP", 121.0)]
                _ingest(client, token, 2000, hot, ahead_ms=60_000)
                async with asyncio.timeout(120):
                    async for message in mqtt.messages:
                        return str(message.topic)
            raise AssertionError("no MQTT message")

        topic = asyncio.run(first_message())
        assert topic.startswith(f"{prefix}/")
    _wait(lambda: bool(receiver.bodies), 180, "the alert's webhook from the worker")


def _check_renewal(install: Install) -> None:
    """certbot.timer's own service renews for real; nginx serves the new certificate; the
    blackbox exporter sees its end date, and Prometheus's expiry alert is pending or firing."""
    machine = install.machine

    def served_serial() -> str:
        return machine.run(
            f"echo | openssl s_client -connect 127.0.0.1:443 -servername {DOMAIN} 2>/dev/null"
            " | openssl x509 -noout -serial"
        ).stdout.strip()

    before = served_serial()
    machine.run("systemctl start certbot.service", timeout=900)
    after = served_serial()
    assert after != before, "nginx still serves the old certificate after the renewal"
    end = machine.run(
        f"openssl x509 -noout -enddate -in /etc/letsencrypt/live/{DOMAIN}/fullchain.pem"
    ).stdout
    assert end.startswith("notAfter=")
    probe = machine.run(
        f"curl -fsS 'http://127.0.0.1:9115/probe?module=http_2xx&target=https://{DOMAIN}/healthz'"
    ).stdout
    expiry = [
        line for line in probe.splitlines() if line.startswith("probe_ssl_earliest_cert_expiry")
    ]
    assert expiry, probe
    left_days = (float(expiry[0].split()[-1]) - time.time()) / 86400
    assert 0 < left_days < 14, left_days

    def alert_state() -> str:
        out = machine.run(
            "curl -fsS 'http://127.0.0.1:9090/api/v1/query?query=ALERTS%7Balertname%3D%22Obd2TlsCertificateExpiresSoon%22%7D'",
            check=False,
        ).stdout
        try:
            result = json.loads(out)["data"]["result"]
        except (ValueError, KeyError):
            return ""
        return result[0]["metric"]["alertstate"] if result else ""

    _wait(lambda: alert_state() in {"pending", "firing"}, 300, "Obd2TlsCertificateExpiresSoon")


def _build(tmp: Path, sha: str, *, broken: bool = False) -> Path:
    """An artifact of this checkout under another commit id; ``broken``: its API never starts."""
    source = tmp / f"source-{sha[:8]}"
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    for name in filter(None, files):
        target = source / name
        if (REPO / name).is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, target)
    shutil.copytree(REPO / "apps" / "web" / "dist", source / "apps" / "web" / "dist")
    subprocess.run(["git", "init", "-q"], cwd=source, check=True)
    if broken:
        cli = source / "apps/dashboard-api/src/obd2_dashboard/cli.py"
        text = cli.read_text()
        marker = "def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:\n"
        assert marker in text
        cli.write_text(
            text.replace(
                marker, marker + "    raise SystemExit('this release is broken on purpose')\n"
            )
        )
    out = tmp / "dist"
    result = subprocess.run(
        ["bash", "deploy/build-artifact.sh", "--out", str(out), "--sha", sha],
        cwd=source, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip().splitlines()[-1])


def _check_deploys(install: Install, tmp: Path, vehicle_id: int, token: str) -> None:
    """The guide's first deploy was one over SSH with ship.sh and the restricted key; a second
    one, then a third that never gets ready and is rolled back. The data from before is there
    after them. The deploy key does nothing else."""
    machine = install.machine
    before = _sample_count(install)
    assert before >= 2
    for n in range(1):
        sha = secrets.token_hex(20)
        started = time.monotonic()
        result = install.ship(_build(tmp, sha))
        install.timings[f"deploy-{n + 2}"] = round(time.monotonic() - started, 1)
        assert result.returncode == 0, result.stdout + result.stderr
        with install.client() as client:
            assert client.get("/healthz").json()["git_sha"] == sha
    live = machine.run("readlink /opt/obd2-dashboard/current").stdout.strip()

    broken_sha = secrets.token_hex(20)
    started = time.monotonic()
    result = install.ship(_build(tmp, broken_sha, broken=True))
    install.timings["deploy-rolled-back"] = round(time.monotonic() - started, 1)
    assert result.returncode != 0
    assert "rolling back" in result.stderr, result.stderr
    assert machine.run("readlink /opt/obd2-dashboard/current").stdout.strip() == live
    assert "rolled-back" in machine.run("tail -1 /opt/obd2-dashboard/revisions.log").stdout
    with install.client() as client:
        _wait(lambda: client.get("/readyz").status_code == 200, 300, "/readyz after the rollback")
    assert _sample_count(install) >= before

    # The deploy key runs the receiver and nothing else.
    key = install.home / ".ssh" / "obd2_deploy"
    shell = subprocess.run(
        [str(install.bin / "ssh"), "-i", str(key), f"deploy@{DOMAIN}", "id"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert shell.returncode != 0
    assert "uid=" not in shell.stdout


def test_guide_with_docker_compose(image: Path, tmp_path: Path, receiver: Receiver) -> None:
    with _installing(image, tmp_path) as install:
        machine = install.machine
        started = time.monotonic()
        standins = (
            "docker import --change 'ENTRYPOINT [\"/usr/local/bin/standin-entrypoint\"]' "
            "/var/lib/obd2-vm/standin-rootfs.tar obd2-standin/postgres:debian12 >/dev/null\n"
            "docker tag obd2-standin/postgres:debian12 obd2-standin/redis:debian12\n"
            "env=/etc/obd2-dashboard-compose.env\n"
            "echo POSTGRES_IMAGE=obd2-standin/postgres:debian12 >> $env\n"
            "echo REDIS_IMAGE=obd2-standin/redis:debian12 >> $env\n"
        )
        _run_guide(
            install,
            "compose",
            after={
                "unpack": SLOW_MACHINE,
                "settings": _operator_settings(f"obd2vm{secrets.token_hex(4)}"),
                "data-compose": standins,
            },
        )
        install.timings["guide"] = round(time.monotonic() - started, 1)
        machine.run("systemctl is-active obd2-dashboard-api obd2-dashboard-worker nginx docker")
        health = machine.run("docker ps --format '{{.Names}} {{.Status}}'").stdout
        assert health.count("(healthy)") == 2, health
        drill = json.loads(
            machine.run("cat /var/lib/obd2-dashboard/backups/restore-drill.json").stdout
        )
        assert drill.get("ok") is True, drill
        _, token = _vehicle_and_device(install)
        with install.client() as client:
            _ingest(client, token, 1, [("RPM", 900.0), ("SPEED", 10.0)])
            assert client.get("/readyz").status_code == 200
        _check_closed(install)
        _wait(lambda: _sample_count(install) >= 2, 60, "the samples in the compose PostgreSQL")
