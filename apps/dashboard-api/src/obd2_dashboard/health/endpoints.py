from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from obd2_dashboard.dependencies import StateDep
from obd2_dashboard.health.service import (
    Report,
    check_dependencies,
    check_migrations,
    check_redis_schema,
)
from obd2_dashboard.health.stats import refresh_pipeline_gauges
from obd2_dashboard.kit.version import VERSION, git_sha

router = APIRouter(tags=["health"])


def _body(report: Report, state: StateDep, status: str) -> dict[str, Any]:
    body: dict[str, Any] = {"status": status, **report.checks}
    body["version"] = VERSION
    body["git_sha"] = git_sha(state.settings.GIT_SHA)
    if report.errors:
        body["errors"] = report.errors
    return body


@router.get("/healthz", summary="Liveness with per-dependency status")
async def healthz(state: StateDep) -> JSONResponse:
    report = await check_dependencies(state.engine, state.broker)
    status = "ok" if report.ok else "error"
    return JSONResponse(_body(report, state, status), status_code=200 if report.ok else 503)


@router.get("/readyz", summary="Ready to serve: dependencies up and migrations at head")
async def readyz(state: StateDep) -> JSONResponse:
    report = await check_dependencies(state.engine, state.broker)
    await check_migrations(state.engine, report)
    await check_redis_schema(state.broker, report)
    status = "ready" if report.ok else "not ready"
    return JSONResponse(_body(report, state, status), status_code=200 if report.ok else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(state: StateDep) -> Response:
    await refresh_pipeline_gauges(state.sessionmaker, state.broker)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
