"""The Grafana dashboard: the committed JSON is generate.py's output, and every query reads a
metric that a running API or worker really exports, with the job that exports it (or one of the
exporters prometheus.yml scrapes besides, named below)."""

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from infra.tests.conftest import REPO, free_port
from obd2_testkit.stack.harness import Stack, StackConfig

GRAFANA = REPO / "infra/grafana"
DASHBOARD = GRAFANA / "dashboards/obd2-dashboard.json"
# Metrics of Prometheus itself and of the Debian exporters the guide installs, not of the app.
EXTERNAL = {
    "up",
    "node_filesystem_avail_bytes",
    "node_filesystem_size_bytes",
    "probe_ssl_earliest_cert_expiry",
    "probe_success",
}
# PromQL words that look like metric names: aggregations, functions, keywords.
_NOT_METRICS = {"by", "without", "and", "or", "unless", "on", "ignoring", "bool", "offset"}


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("obd2_grafana_generate", GRAFANA / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def selected(expr: str) -> list[tuple[str, str | None]]:
    """(metric, job or None) for each metric a PromQL expression selects."""
    # Label lists of aggregations and matching, and ranges, name no metric.
    bare = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    bare = re.sub(r"\[[^\]]*\]", " ", bare)
    found: list[tuple[str, str | None]] = []
    for match in re.finditer(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?(\s*\()?", bare):
        name, matchers, call = match.groups()
        if call is not None or name in _NOT_METRICS:
            continue  # a function or an aggregation
        job = re.search(r'job="([^"]+)"', matchers or "")
        found.append((name, job.group(1) if job else None))
    return found


def exported(exposition: str) -> set[str]:
    """Names a Prometheus text exposition carries (histograms with their series' suffixes)."""
    names: set[str] = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            names.add(name)
            if kind == "histogram":
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
            if kind == "counter":
                names.add(f"{name}_total" if not name.endswith("_total") else name)
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def test_committed_json_is_the_generators_output() -> None:
    assert DASHBOARD.read_text() == generator().render(), "run infra/grafana/generate.py"


def test_every_panel_has_a_query_and_the_parser_finds_its_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert all(p.get("targets") for p in panels)
    assert selected('sum by (route, le) (rate(x_bucket{job="a", le="1"}[5m])) / y') == [
        ("x_bucket", "a"),
        ("y", None),
    ]
    rows = {p["title"] for p in dashboard["panels"] if p["type"] == "row"}
    assert {"Ingest", "Latency", "Errors", "Streams", "Worker", "Backups"} <= rows


@pytest.mark.slow
def test_every_query_names_a_metric_the_app_exports(tmp_path: Path) -> None:
    worker_port = free_port()
    app = Stack(
        tmp_path / "stack",
        StackConfig(apis=1, workers=1, env={"WORKER_METRICS_PORT": str(worker_port)}),
    )
    try:
        app.start()
        api_url = app.apis[0].url
        worker_url = f"http://127.0.0.1:{worker_port}"
        app.workers[0].wait_http(f"{worker_url}/metrics")
        by_job = {
            "obd2-dashboard-api": exported(httpx.get(f"{api_url}/metrics", timeout=10).text),
            "obd2-dashboard-worker": exported(httpx.get(f"{worker_url}/metrics", timeout=10).text),
        }
    finally:
        app.stop()
    missing = []
    for expr in queries():
        for name, job in selected(expr):
            if name in EXTERNAL:
                continue
            assert job in by_job, f"{name} in {expr!r} names no obd2 job"
            if name not in by_job[job]:
                missing.append(f"{name} ({job})")
    assert not missing, missing
