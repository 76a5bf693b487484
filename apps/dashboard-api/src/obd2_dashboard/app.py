import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from obd2_dashboard.alerts.endpoints import router as alerts_router
from obd2_dashboard.auth.endpoints import router as auth_router
from obd2_dashboard.background import worker_companions
from obd2_dashboard.bridge.endpoints import router as bridge_router
from obd2_dashboard.dependencies import AppState
from obd2_dashboard.devices.endpoints import router as devices_router
from obd2_dashboard.dtcs.endpoints import router as dtcs_router
from obd2_dashboard.events.endpoints import router as events_router
from obd2_dashboard.health.endpoints import router as health_router
from obd2_dashboard.imports.endpoints import router as imports_router
from obd2_dashboard.kit.broker import make_broker
from obd2_dashboard.kit.db import make_engine, make_sessionmaker
from obd2_dashboard.kit.docs import install_docs
from obd2_dashboard.kit.errors import install_database_error_handlers, install_error_handlers
from obd2_dashboard.kit.http import (
    ApiHeadersMiddleware,
    BodyLimitMiddleware,
    RequestContextMiddleware,
)
from obd2_dashboard.kit.openapi import install_openapi
from obd2_dashboard.kit.version import VERSION
from obd2_dashboard.live.endpoints import router as live_router
from obd2_dashboard.live.hub import LiveHub
from obd2_dashboard.maps.endpoints import router as maps_router
from obd2_dashboard.ops.redis_bootstrap import bootstrap
from obd2_dashboard.pids.endpoints import router as pids_router
from obd2_dashboard.pids.service import PidCatalogue
from obd2_dashboard.presence import service as presence
from obd2_dashboard.settings import Settings
from obd2_dashboard.telemetry.committer import IngestCommitter
from obd2_dashboard.telemetry.endpoints import router as telemetry_router
from obd2_dashboard.telemetry.service import Pipeline
from obd2_dashboard.telemetry.worker import RollupWorker, WorkerConfig
from obd2_dashboard.torque.endpoints import router as torque_router
from obd2_dashboard.trips.endpoints import router as trips_router
from obd2_dashboard.units.endpoints import router as units_router
from obd2_dashboard.vehicles.endpoints import invitations_router
from obd2_dashboard.vehicles.endpoints import router as vehicles_router
from obd2_dashboard.vehicles.service import VehicleNotFoundError, VehicleReadOnlyError
from obd2_dashboard.web.endpoints import install_web

log = logging.getLogger("obd2_dashboard")

API_PREFIX = "/api/v1"
INGEST_PATHS = frozenset({f"{API_PREFIX}/ingest", f"{API_PREFIX}/torque"})
IMPORTS_PATH = re.compile(rf"^{API_PREFIX}/vehicles/[0-9]+/imports$")
OPS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def is_api_path(path: str) -> bool:
    """Everything but the web UI's files."""
    return path.startswith(f"{API_PREFIX}/") or path == API_PREFIX or path in OPS_PATHS


def api_router() -> APIRouter:
    router = APIRouter(prefix=API_PREFIX)
    # Matched in this order: ingest, the hot path, first.
    router.include_router(telemetry_router)
    router.include_router(auth_router)
    router.include_router(vehicles_router)
    router.include_router(invitations_router)
    router.include_router(devices_router)
    router.include_router(trips_router)
    router.include_router(live_router)
    router.include_router(bridge_router)
    router.include_router(dtcs_router)
    router.include_router(torque_router)
    router.include_router(alerts_router)
    router.include_router(units_router)
    router.include_router(pids_router)
    router.include_router(events_router)
    router.include_router(imports_router)
    router.include_router(maps_router)
    return router


def install_vehicle_error_handlers(app: FastAPI) -> None:
    async def not_found(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    async def read_only(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=403)

    app.add_exception_handler(VehicleNotFoundError, not_found)
    app.add_exception_handler(VehicleReadOnlyError, read_only)


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        broker = make_broker(settings.REDIS_URL, settings.REDIS_KEY_PREFIX)
        sessionmaker = make_sessionmaker(engine)
        hub = LiveHub(broker)
        pipeline = Pipeline.for_broker(broker)
        catalogue = PidCatalogue()
        committer = IngestCommitter(
            sessionmaker, pipeline, catalogue=catalogue, thresholds=presence.thresholds(settings)
        )
        app.state.obd2 = AppState(
            settings=settings,
            engine=engine,
            sessionmaker=sessionmaker,
            broker=broker,
            pipeline=pipeline,
            committer=committer,
            hub=hub,
            catalogue=catalogue,
        )
        stop = asyncio.Event()
        worker_task: asyncio.Task[None] | None = None
        in_process_worker = settings.EMBEDDED_WORKER
        if in_process_worker is None:
            in_process_worker = broker.kind == "embedded"
        if in_process_worker:
            # No Redis: streams live in this process, so the worker must too.
            await bootstrap(broker)
            config = WorkerConfig.from_settings(settings)
            companions = worker_companions(settings, sessionmaker, broker, consumer=config.consumer)
            worker = RollupWorker(sessionmaker, broker, config, companions)
            worker_task = asyncio.create_task(worker.run(stop), name="embedded-worker")
        log.info(
            "started",
            extra={"version": VERSION, "database": engine.dialect.name, "broker": broker.kind},
        )
        try:
            yield
        finally:
            stop.set()
            if worker_task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await worker_task
            await committer.close()
            await hub.close()
            await broker.close()
            await engine.dispose()

    app = FastAPI(
        title="obd2-dashboard",
        version=VERSION,
        lifespan=lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # FastAPI's page loads its script from a CDN: install_docs instead
        redoc_url=None,
    )
    install_error_handlers(app)
    install_database_error_handlers(app)
    install_vehicle_error_handlers(app)
    app.include_router(health_router)
    app.include_router(api_router())
    install_docs(app, f"{API_PREFIX}/docs", f"{API_PREFIX}/openapi.json")
    install_web(app, settings)
    install_openapi(app, API_PREFIX)

    def body_limit(path: str) -> int:
        if path in INGEST_PATHS:
            return settings.INGEST_MAX_BODY_BYTES
        if IMPORTS_PATH.match(path):
            return settings.IMPORT_MAX_BODY_BYTES
        return settings.API_MAX_BODY_BYTES

    app.add_middleware(BodyLimitMiddleware, limit_for=body_limit)
    app.add_middleware(RequestContextMiddleware, quiet_paths=INGEST_PATHS)
    # Outermost: its headers go on every answer, the other middleware's errors included.
    app.add_middleware(ApiHeadersMiddleware, applies_to=is_api_path)
    return app
