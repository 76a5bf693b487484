"""The operators' Grafana dashboard, written as code with the Grafana Foundation SDK.

    uv run python infra/grafana/generate.py          # rewrites dashboards/obd2-dashboard.json
    uv run python infra/grafana/generate.py --check  # exit 1 if the committed JSON differs

Every query reads a metric the API or the worker exports (or node-exporter's and the blackbox
exporter's, which prometheus.yml scrapes); infra/tests/test_grafana_dashboard.py checks that
against a running app, and that the committed JSON is this script's output.
"""

# A PromQL query reads best on one line, as it is pasted into Prometheus's own page.
# ruff: noqa: E501

import json
import sys
from pathlib import Path

from grafana_foundation_sdk.builders.common import (
    ReduceDataOptions,
    VizLegendOptions,
    VizTooltipOptions,
)
from grafana_foundation_sdk.builders.dashboard import (
    Dashboard,
    DatasourceVariable,
    Row,
    ThresholdsConfig,
)
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.builders.stat import Panel as Stat
from grafana_foundation_sdk.builders.timeseries import Panel as Timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import (
    LegendDisplayMode,
    LegendPlacement,
    TooltipDisplayMode,
)
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    Threshold,
    ThresholdsMode,
)

OUTPUT = Path(__file__).resolve().parent / "dashboards" / "obd2-dashboard.json"
UID = "obd2-dashboard"
# Every panel reads the Prometheus the viewer picks; provisioning names one "Prometheus".
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
API = 'job="obd2-dashboard-api"'
WORKER = 'job="obd2-dashboard-worker"'
RATE = "$__rate_interval"


def query(expr: str, legend: str = "", ref: str = "A") -> Dataquery:
    built = Dataquery().expr(expr).ref_id(ref).datasource(DATASOURCE)
    return built.legend_format(legend) if legend else built


def graph(title: str, unit: str, *queries: Dataquery, description: str = "") -> Timeseries:
    panel = (
        Timeseries()
        .title(title)
        .unit(unit)
        .datasource(DATASOURCE)
        .height(8)
        .span(8)
        .legend(
            VizLegendOptions()
            .show_legend(True)
            .display_mode(LegendDisplayMode.LIST)
            .placement(LegendPlacement.BOTTOM)
        )
        .tooltip(VizTooltipOptions().mode(TooltipDisplayMode.MULTI))
    )
    if description:
        panel = panel.description(description)
    for target in queries:
        panel = panel.with_target(target)
    return panel


def stat(
    title: str,
    unit: str,
    target: Dataquery,
    *,
    red_above: float | None = None,
    red_below: float | None = None,
    description: str = "",
) -> Stat:
    panel = (
        Stat()
        .title(title)
        .unit(unit)
        .datasource(DATASOURCE)
        .height(4)
        .span(4)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    panel = panel.with_target(target)
    if description:
        panel = panel.description(description)
    if red_above is not None:
        steps = [Threshold(value=None, color="green"), Threshold(value=red_above, color="red")]
    elif red_below is not None:
        steps = [Threshold(value=None, color="red"), Threshold(value=red_below, color="green")]
    else:
        return panel
    return panel.thresholds(ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(steps))


def refs(*pairs: tuple[str, str]) -> list[Dataquery]:
    return [query(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(pairs)]


def build() -> Dashboard:
    dashboard = (
        Dashboard("obd2-dashboard")
        .uid(UID)
        .description("Ingest, latency, errors, streams, worker, backups and database")
        .tags(["obd2-dashboard"])
        .refresh("1m")
        .time("now-6h", "now")
        .timezone("browser")
        .with_variable(DatasourceVariable("datasource").label("Prometheus").type("prometheus"))
    )

    dashboard = (
        dashboard.with_row(Row("Ingest"))
        .with_panel(
            graph(
                "Samples received",
                "reqps",
                query(
                    f"sum by (result) (rate(obd2_ingest_samples_total{{{API}}}[{RATE}]))",
                    "{{result}}",
                ),
                description="Samples a second, by what became of them.",
            )
        )
        .with_panel(
            graph(
                "Batches stored",
                "reqps",
                query(
                    f"sum by (transport) (rate(obd2_ingest_batches_total{{{API}}}[{RATE}]))",
                    "{{transport}}",
                ),
            )
        )
        .with_panel(
            graph(
                "Ingest refused (503)",
                "reqps",
                *refs(
                    (
                        f'sum by (route) (rate(obd2_http_requests_total{{{API}, route=~"/api/v1/(ingest|torque)", status="503"}}[{RATE}]))',
                        "{{route}}",
                    ),
                    (
                        f"sum(rate(obd2_ingest_refused_busy_total{{{API}}}[{RATE}]))",
                        "busy (all transports)",
                    ),
                ),
                description="Devices keep a refused batch and send it again.",
            )
        )
        .with_panel(stat("Devices online", "short", query(f"max(obd2_devices_online{{{API}}})")))
        .with_panel(
            stat(
                "Batches per ingest transaction (median)",
                "short",
                query(
                    f"histogram_quantile(0.5, sum by (le) (rate(obd2_ingest_group_batches_bucket{{{API}}}[{RATE}])))"
                ),
            )
        )
    )

    dashboard = (
        dashboard.with_row(Row("Latency"))
        .with_panel(
            graph(
                "API latency",
                "s",
                *refs(
                    *(
                        (
                            f"histogram_quantile({q}, sum by (le) (rate(obd2_http_request_duration_seconds_bucket{{{API}}}[{RATE}])))",
                            f"p{round(q * 100)}",
                        )
                        for q in (0.5, 0.9, 0.99)
                    )
                ),
                description="Time to the response headers. Obd2HttpLatencyHigh fires above 2 s at p99.",
            ).span(12)
        )
        .with_panel(
            graph(
                "p99 by route",
                "s",
                query(
                    f"topk(8, histogram_quantile(0.99, sum by (route, le) (rate(obd2_http_request_duration_seconds_bucket{{{API}}}[{RATE}]))))",
                    "{{route}}",
                ),
            ).span(12)
        )
    )

    dashboard = (
        dashboard.with_row(Row("Errors"))
        .with_panel(
            graph(
                "Server errors (5xx) share",
                "percentunit",
                query(
                    f'sum(rate(obd2_http_requests_total{{{API}, status=~"5.."}}[{RATE}])) / sum(rate(obd2_http_requests_total{{{API}}}[{RATE}]))',
                    "5xx",
                ),
                description="Obd2Http5xxRatio fires above 5 % for 10 minutes.",
            )
        )
        .with_panel(
            graph(
                "Answers by status",
                "reqps",
                query(
                    f"sum by (status) (rate(obd2_http_requests_total{{{API}}}[{RATE}]))",
                    "{{status}}",
                ),
            )
        )
        .with_panel(
            graph(
                "5xx by route",
                "reqps",
                query(
                    f'sum by (route, status) (rate(obd2_http_requests_total{{{API}, status=~"5.."}}[{RATE}]))',
                    "{{route}} {{status}}",
                ),
            )
        )
    )

    dashboard = (
        dashboard.with_row(Row("Streams"))
        .with_panel(
            graph(
                "Work stream",
                "short",
                *refs(
                    (f"obd2_stream_lag_messages{{{API}}}", "lag {{group}}"),
                    (f"obd2_stream_pending_messages{{{API}}}", "pending {{group}}"),
                    (f"obd2_stream_length{{{API}}}", "length {{stream}}"),
                ),
                description="Lag: not yet delivered to the worker group. Pending: delivered, not acknowledged.",
            )
        )
        .with_panel(
            graph(
                "Outbox backlog",
                "short",
                query(f"obd2_outbox_backlog{{{API}}}", "stored batches awaiting rollups and trips"),
            )
        )
        .with_panel(
            graph(
                "Live streams open",
                "short",
                query(f"sum by (transport) (obd2_live_streams_open{{{API}}})", "{{transport}}"),
            )
        )
    )

    dashboard = (
        dashboard.with_row(Row("Worker"))
        .with_panel(stat("Worker up", "bool", query(f"up{{{WORKER}}}"), red_below=1))
        .with_panel(
            stat(
                "Dead letters",
                "short",
                query(f"max(obd2_dead_letters{{{API}}})"),
                red_above=1,
                description="obd2-dashboard dead-letters lists them; --retry ID or --discard ID.",
            )
        )
        .with_panel(
            graph(
                "Batches processed",
                "ops",
                *refs(
                    (
                        f"sum by (path) (rate(obd2_worker_batches_total{{{WORKER}}}[{RATE}]))",
                        "{{path}}",
                    ),
                    (
                        f"sum(rate(obd2_worker_batch_failures_total{{{WORKER}}}[{RATE}]))",
                        "failed tries",
                    ),
                    (
                        f"sum(rate(obd2_worker_failures_total{{{WORKER}}}[{RATE}]))",
                        "failed entries",
                    ),
                ),
            )
        )
        .with_panel(
            graph(
                "Alert deliveries",
                "ops",
                query(
                    f"sum by (channel, outcome) (rate(obd2_alert_deliveries_total{{{WORKER}}}[{RATE}]))",
                    "{{channel}} {{outcome}}",
                ),
            )
        )
    )

    dashboard = (
        dashboard.with_row(Row("Backups"))
        .with_panel(
            stat(
                "Newest verified backup age",
                "s",
                query(f"time() - obd2_backup_newest_verified_timestamp_seconds{{{API}}}"),
                red_above=26 * 3600,
            )
        )
        .with_panel(
            stat(
                "Newest backup size",
                "bytes",
                query(f"obd2_backup_newest_size_bytes{{{API}}}"),
            )
        )
        .with_panel(
            stat(
                "Last restore drill passed",
                "bool",
                query(f"obd2_restore_drill_last_run_ok{{{API}}}"),
                red_below=1,
            )
        )
        .with_panel(
            stat(
                "Since a drill last passed",
                "s",
                query(f"time() - obd2_restore_drill_last_success_timestamp_seconds{{{API}}}"),
                red_above=35 * 86400,
            )
        )
        .with_panel(
            stat(
                "Since WAL was last archived",
                "s",
                query(
                    f"time() - obd2_wal_last_archived_timestamp_seconds{{{API}}} and obd2_wal_archiving_enabled{{{API}}} == 1"
                ),
                description="Empty while PostgreSQL's archive_mode is off.",
            )
        )
        .with_panel(
            stat(
                "WAL archive failures (1 h)",
                "short",
                query(f"increase(obd2_wal_archive_failed_count{{{API}}}[1h])"),
                red_above=1,
            )
        )
    )

    return (
        dashboard.with_row(Row("Database and machine"))
        .with_panel(
            graph(
                "Readiness by dependency",
                "bool",
                query(f"obd2_dependency_up{{{API}}}", "{{dependency}}"),
            )
        )
        .with_panel(
            graph(
                "Free disk",
                "percentunit",
                query(
                    'node_filesystem_avail_bytes{fstype!~"tmpfs|overlay|squashfs"} / node_filesystem_size_bytes{fstype!~"tmpfs|overlay|squashfs"}',
                    "{{mountpoint}}",
                ),
                description="Obd2DiskNearlyFull fires under 10 %.",
            )
        )
        .with_panel(
            graph(
                "WAL archived",
                "short",
                *refs(
                    (f"obd2_wal_archived_count{{{API}}}", "archived"),
                    (f"obd2_wal_archive_failed_count{{{API}}}", "failed"),
                ),
            )
        )
        .with_panel(
            stat(
                "TLS certificate expires in",
                "s",
                query('min(probe_ssl_earliest_cert_expiry{job="obd2-dashboard-tls"}) - time()'),
                red_below=14 * 86400,
            )
        )
        .with_panel(
            stat(
                "Site reachable over HTTPS",
                "bool",
                query('min(probe_success{job="obd2-dashboard-tls"})'),
                red_below=1,
            )
        )
        .with_panel(
            stat(
                "Since retention last ran",
                "s",
                query(f"time() - max(obd2_retention_last_run_timestamp_seconds{{{WORKER}}})"),
            )
        )
    )


def render() -> str:
    return json.dumps(build().build(), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def main() -> int:
    rendered = render()
    if "--check" in sys.argv[1:]:
        if not OUTPUT.exists() or OUTPUT.read_text() != rendered:
            print(f"{OUTPUT} is not generate.py's output: run infra/grafana/generate.py")
            return 1
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(rendered)
    return 0


if __name__ == "__main__":
    sys.exit(main())
