"""An alert reaches a person: Debian's real Prometheus and Alertmanager on loopback, with the
shipped rules and routes, scrape a real API and worker; the worker stops and a volume fills, and
a receiver of the test gets each alert from the receiver the shipped routes name for it.

The configurations are the shipped ones with loopback ports, second-long intervals and rules
whose `for:` is a few seconds (promtool's tests check the real durations); every receiver's
e-mail, webhook and ntfy are replaced by a webhook to the test, at /<receiver name>.

Stand-in, at the boundary: ``VolumeExporter`` answers as prometheus-node-exporter's filesystem
collector would for a 16 MiB ext4 volume whose used bytes are the files in a directory, because
filling a real small filesystem needs root to mount one.
"""

import json
import re
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from infra.tests.conftest import REPO, free_port, tool
from obd2_testkit.stack.harness import Stack, StackConfig
from obd2_testkit.stack.processes import Proc, wait_until

PROMETHEUS = REPO / "infra/prometheus"
ALERTMANAGER = REPO / "infra/alertmanager"
SHORT_FOR = "3s"

pytestmark = pytest.mark.slow


class _Server(ThreadingHTTPServer):
    daemon_threads = True


@contextmanager
def serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    server = _Server(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


class Receiver:
    """Alertmanager's webhook notifications, by the path (the receiver's name) they came to."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.notifications: list[tuple[str, dict[str, Any]]] = []

    def handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver.lock:
                    receiver.notifications.append((self.path.strip("/"), body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        return Handler

    def mark(self) -> int:
        with self.lock:
            return len(self.notifications)

    def firing(self, alertname: str, since: int = 0) -> list[tuple[str, dict[str, Any]]]:
        """(receiver, alert) for each firing alert of that name received after ``since``."""
        with self.lock:
            return [
                (path, alert)
                for path, body in self.notifications[since:]
                for alert in body["alerts"]
                if alert["labels"]["alertname"] == alertname and alert["status"] == "firing"
            ]


class VolumeExporter:
    """node_filesystem_{size,avail}_bytes of a 16 MiB volume whose contents are ``directory``."""

    SIZE = 16 * 1024 * 1024

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def handler(self) -> type[BaseHTTPRequestHandler]:
        volume = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                used = sum(p.stat().st_size for p in volume.directory.rglob("*") if p.is_file())
                labels = 'device="/dev/vdb1",fstype="ext4",mountpoint="/var/lib/obd2-dashboard"'
                body = (
                    f"node_filesystem_size_bytes{{{labels}}} {volume.SIZE}\n"
                    f"node_filesystem_avail_bytes{{{labels}}} {max(volume.SIZE - used, 0)}\n"
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        return Handler


def prometheus_config(targets: dict[str, str], alertmanager: str, rules: Path) -> dict[str, Any]:
    """The shipped prometheus.yml with the test's targets, jobs without one dropped."""
    config: dict[str, Any] = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(rules)]
    config["alerting"]["alertmanagers"][0]["static_configs"] = [{"targets": [alertmanager]}]
    jobs = [job for job in config["scrape_configs"] if job["job_name"] in targets]
    for job in jobs:
        job["static_configs"] = [{"targets": [targets[job["job_name"]]]}]
    config["scrape_configs"] = jobs
    return config


def short_rules() -> dict[str, Any]:
    rules: dict[str, Any] = yaml.safe_load((PROMETHEUS / "obd2-dashboard.rules.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule["for"] = SHORT_FOR
    return rules


def alertmanager_config(receiver_port: int) -> dict[str, Any]:
    """The shipped routes and inhibitions; each receiver posts to the test at /<its name>."""
    config: dict[str, Any] = yaml.safe_load((ALERTMANAGER / "alertmanager.yml").read_text())
    config["global"] = {"resolve_timeout": "5m"}
    config["route"] |= {"group_wait": "1s", "group_interval": "1s"}
    config["receivers"] = [
        {
            "name": receiver["name"],
            "webhook_configs": [{"url": f"http://127.0.0.1:{receiver_port}/{receiver['name']}"}],
        }
        for receiver in config["receivers"]
    ]
    return config


@contextmanager
def alertmanager(tmp_path: Path, receiver_port: int) -> Iterator[int]:
    """Debian's Alertmanager with the test's configuration on a loopback port; yields the port."""
    port = free_port()
    config = tmp_path / "alertmanager.yml"
    config.write_text(yaml.safe_dump(alertmanager_config(receiver_port)))
    proc = Proc(
        [
            tool("prometheus-alertmanager"),
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'alertmanager'}",
            f"--web.listen-address=127.0.0.1:{port}",
            # One Alertmanager: no cluster port (it would listen on every address).
            "--cluster.listen-address=",
        ],
        {},
        tmp_path / "alertmanager.log",
    ).start()
    try:
        proc.wait_http(f"http://127.0.0.1:{port}/-/ready", timeout=30)
        yield port
    finally:
        proc.stop()


def active_alerts(prometheus: str) -> dict[str, str]:
    """alertname: state (pending or firing) of Prometheus's alerts now."""
    alerts = httpx.get(f"{prometheus}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    return {a["labels"]["alertname"]: a["state"] for a in alerts}


def targets_up(prometheus: str, jobs: set[str]) -> bool:
    try:
        active = httpx.get(f"{prometheus}/api/v1/targets", timeout=5).json()["data"]
    except httpx.HTTPError:
        return False
    healthy = {t["labels"]["job"] for t in active["activeTargets"] if t["health"] == "up"}
    return jobs <= healthy


def test_worker_stopped_and_volume_filled_reach_the_receiver(tmp_path: Path) -> None:
    receiver = Receiver()
    volume_dir = tmp_path / "volume"
    volume_dir.mkdir()
    worker_port = free_port()
    with ExitStack() as running:
        receiver_port = running.enter_context(serve(receiver.handler()))
        node_port = running.enter_context(serve(VolumeExporter(volume_dir).handler()))
        app = Stack(
            tmp_path / "stack",
            StackConfig(
                apis=1,
                workers=1,
                env={
                    "WORKER_METRICS_PORT": str(worker_port),
                    "BACKUP_DIR": str(tmp_path / "backups"),
                },
            ),
        )
        running.callback(app.stop)
        app.start()

        am_port = running.enter_context(alertmanager(tmp_path, receiver_port))

        rules = tmp_path / "obd2-dashboard.rules.yml"
        rules.write_text(yaml.safe_dump(short_rules()))
        prom_port = free_port()
        prom_config = tmp_path / "prometheus.yml"
        targets = {
            "obd2-dashboard-api": f"127.0.0.1:{app.apis[0].port}",
            "obd2-dashboard-worker": f"127.0.0.1:{worker_port}",
            "node": f"127.0.0.1:{node_port}",
        }
        prom_config.write_text(
            yaml.safe_dump(prometheus_config(targets, f"127.0.0.1:{am_port}", rules))
        )
        prometheus = Proc(
            [
                tool("prometheus"),
                f"--config.file={prom_config}",
                f"--storage.tsdb.path={tmp_path / 'prometheus'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            {},
            tmp_path / "prometheus.log",
        ).start()
        running.callback(prometheus.stop)
        prom = f"http://127.0.0.1:{prom_port}"
        prometheus.wait_http(f"{prom}/-/ready", timeout=30)
        wait_until(lambda: targets_up(prom, set(targets)), 30, "every target to be scraped")
        # Before the first scrapes the worker's `up` was absent, so Obd2WorkerDown may have been
        # pending: the rules settle on the healthy state once they have seen every target up.
        healthy = {"Obd2WorkerDown", "Obd2DiskNearlyFull", "Obd2ApiDown"}
        wait_until(
            lambda: healthy.isdisjoint(active_alerts(prom)), 30, "the healthy stack to be quiet"
        )

        stopped = receiver.mark()
        app.workers[0].stop()
        wait_until(lambda: bool(receiver.firing("Obd2WorkerDown", stopped)), 60, "Obd2WorkerDown")
        (path, alert), *_ = receiver.firing("Obd2WorkerDown", stopped)
        assert path == "operator-urgent"
        assert alert["labels"]["job"] == "obd2-dashboard-worker"
        assert (
            alert["annotations"]["summary"] == "The obd2-dashboard worker does not answer /metrics"
        )

        filled = receiver.mark()
        (volume_dir / "telemetry").write_bytes(b"\0" * (15 * 1024 * 1024))
        wait_until(lambda: bool(receiver.firing("Obd2DiskNearlyFull", filled)), 60, "disk alert")
        (path, alert), *_ = receiver.firing("Obd2DiskNearlyFull", filled)
        assert path == "operator"
        assert alert["labels"]["mountpoint"] == "/var/lib/obd2-dashboard"
        assert re.fullmatch(r".* has less than 10% free", alert["annotations"]["summary"])
        # The API never went down, so nothing was sent for it.
        assert receiver.firing("Obd2ApiDown") == []


def test_the_api_down_holds_back_the_alerts_it_explains(tmp_path: Path) -> None:
    """The shipped inhibitions, in the real Alertmanager: with the API down, its 5xx and latency
    alerts are suppressed; a disk alert, which it does not explain, is not."""
    with ExitStack() as running:
        receiver_port = running.enter_context(serve(Receiver().handler()))
        am = f"http://127.0.0.1:{running.enter_context(alertmanager(tmp_path, receiver_port))}"
        job = {"job": "obd2-dashboard-api", "instance": "127.0.0.1:8000"}
        posted = [
            {"alertname": "Obd2ApiDown", "severity": "critical", **job},
            {"alertname": "Obd2Http5xxRatio", "severity": "warning", "job": job["job"]},
            {"alertname": "Obd2HttpLatencyHigh", "severity": "warning", "job": job["job"]},
            {"alertname": "Obd2DiskNearlyFull", "severity": "warning", "job": "node"},
        ]
        answer = httpx.post(
            f"{am}/api/v2/alerts", json=[{"labels": labels} for labels in posted], timeout=10
        )
        assert answer.status_code == 200, answer.text

        def states() -> dict[str, tuple[str, bool]]:
            alerts = httpx.get(f"{am}/api/v2/alerts", timeout=10).json()
            return {
                a["labels"]["alertname"]: (a["status"]["state"], bool(a["status"]["inhibitedBy"]))
                for a in alerts
            }

        wait_until(lambda: len(states()) == len(posted), 30, "Alertmanager to hold the alerts")
        assert states() == {
            "Obd2ApiDown": ("active", False),
            "Obd2Http5xxRatio": ("suppressed", True),
            "Obd2HttpLatencyHigh": ("suppressed", True),
            "Obd2DiskNearlyFull": ("active", False),
        }
