"""The alert rules pass promtool's checks and unit tests (promtool: Debian package prometheus)."""

import subprocess

import yaml

from infra.tests.conftest import REPO, tool

PROMETHEUS = REPO / "infra/prometheus"
DOC = REPO / "doc/ops-deploy.md"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("promtool"), *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


def test_rules_are_valid() -> None:
    checked = promtool("check", "rules", "obd2-dashboard.rules.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 17 rules found" in checked.stdout


def test_scrape_config_is_valid() -> None:
    checked = promtool("check", "config", "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_rules_unit_tests_pass() -> None:
    tested = promtool("test", "rules", "obd2-dashboard.rules.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_alert_has_a_firing_test_and_the_doc_names_its_metrics() -> None:
    rules = yaml.safe_load((PROMETHEUS / "obd2-dashboard.rules.yml").read_text())
    alerts = [r["alert"] for g in rules["groups"] for r in g["rules"]]
    tests = yaml.safe_load((PROMETHEUS / "obd2-dashboard.rules.test.yml").read_text())
    fired = {
        case["alertname"]
        for t in tests["tests"]
        for case in t.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert set(alerts) == fired
    doc = DOC.read_text()
    for metric in (
        "obd2_ready",
        "obd2_dependency_up",
        "obd2_ingest_samples_total",
        "obd2_devices_online",
        "obd2_stream_lag_messages",
        "obd2_dead_letters",
        "obd2_stream_pending_messages",
        "obd2_backup_newest_verified_timestamp_seconds",
        "obd2_restore_drill_last_success_timestamp_seconds",
        "node_filesystem_avail_bytes",
        "probe_ssl_earliest_cert_expiry",
        "probe_success",
        "obd2_http_requests_total",
        "obd2_http_request_duration_seconds",
        "obd2_ingest_refused_busy_total",
        "obd2_outbox_backlog",
        "obd2_wal_archiving_enabled",
        "obd2_wal_last_archived_timestamp_seconds",
        "obd2_wal_last_failed_timestamp_seconds",
        "obd2_wal_archive_failed_count",
    ):
        assert metric in doc
    for alert in alerts:
        assert alert in doc
