import asyncio
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from obd2_dashboard.dependencies import StateDep
from obd2_dashboard.health.service import (
    Report,
    check_dependencies,
    check_migrations,
    check_redis_schema,
)
from obd2_dashboard.health.stats import dead_letter_status, pipeline_families
from obd2_dashboard.health.wal_archive import archiver_families, read_archiver
from obd2_dashboard.kit.metrics import render
from obd2_dashboard.kit.version import VERSION, git_sha
from obd2_dashboard.ops.backup import BackupStatus, backup_status

router = APIRouter(tags=["health"])

_REPORT = {"application/json": {"schema": {"type": "object", "additionalProperties": True}}}
_REPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "every dependency answers", "content": _REPORT},
    503: {
        "description": "the same keys, with an error for each dependency down",
        "content": _REPORT,
    },
}


def _body(report: Report, state: StateDep, status: str) -> dict[str, Any]:
    body: dict[str, Any] = {"status": status, **report.checks}
    body["version"] = VERSION
    body["git_sha"] = git_sha(state.settings.GIT_SHA)
    if report.errors:
        body["errors"] = report.errors
    return body


@router.get("/healthz", summary="Liveness with per-dependency status", responses=_REPORT_RESPONSES)
async def healthz(state: StateDep) -> JSONResponse:
    report = await check_dependencies(state.engine, state.broker)
    status = "ok" if report.ok else "error"
    return JSONResponse(_body(report, state, status), status_code=200 if report.ok else 503)


@router.get(
    "/readyz",
    summary="Ready to serve: dependencies up and migrations at head",
    responses=_REPORT_RESPONSES,
)
async def readyz(state: StateDep) -> JSONResponse:
    report = await check_dependencies(state.engine, state.broker)
    await check_migrations(state.engine, report)
    await check_redis_schema(state.broker, report)
    status = "ready" if report.ok else "not ready"
    body = _body(report, state, status)
    if report.checks.get("migrations") == "ok":
        # Work the worker gave up on: the Status page shows it (it does not make us unready).
        dead = await dead_letter_status(state.sessionmaker)
        if dead is not None:
            body["dead_letters"] = dead
    return JSONResponse(body, status_code=200 if report.ok else 503)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _readiness_families(report: Report) -> list[Metric]:
    up = GaugeMetricFamily(
        "obd2_dependency_up",
        "1 when the dependency answers /readyz's check (migrations: at head)",
        labels=["dependency"],
    )
    for name in ("db", "redis", "migrations", "redis_schema"):
        up.add_metric([name], 0.0 if name in report.errors else 1.0)
    return [up, _gauge("obd2_ready", "1 when /readyz answers 200", 1.0 if report.ok else 0.0)]


def _backup_families(status: BackupStatus) -> list[Metric]:
    return [
        _gauge(
            "obd2_backup_newest_verified_timestamp_seconds",
            "Creation time of the newest verified backup in BACKUP_DIR (0: none)",
            status.newest_timestamp,
        ),
        _gauge(
            "obd2_backup_newest_size_bytes",
            "Size of the newest verified backup",
            status.newest_size_bytes,
        ),
        _gauge("obd2_backup_verified_count", "Verified backups kept", status.verified_count),
        _gauge(
            "obd2_restore_drill_last_run_timestamp_seconds",
            "When the last restore drill ran (0: never)",
            status.drill_last_run_timestamp,
        ),
        _gauge(
            "obd2_restore_drill_last_success_timestamp_seconds",
            "When a restore drill last passed (0: never)",
            status.drill_last_success_timestamp,
        ),
        _gauge(
            "obd2_restore_drill_last_run_ok",
            "1 when the last restore drill passed",
            1.0 if status.drill_last_run_ok else 0.0,
        ),
    ]


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(state: StateDep) -> Response:
    # Every worker answers for all of them: recorded values come from the multi-process files;
    # readiness, backups and the pipeline's shared state (streams, outbox) are read now.
    report = await check_dependencies(state.engine, state.broker)
    await check_migrations(state.engine, report)
    await check_redis_schema(state.broker, report)
    status = await asyncio.to_thread(backup_status, state.settings.BACKUP_DIR)
    pipeline = await pipeline_families(state.sessionmaker, state.broker)
    archiver = archiver_families(await read_archiver(state.engine))
    body = render([*_readiness_families(report), *_backup_families(status), *pipeline, *archiver])
    return Response(body, media_type=CONTENT_TYPE_LATEST)
