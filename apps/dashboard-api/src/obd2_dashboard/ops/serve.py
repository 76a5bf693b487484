import os
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from obd2_dashboard.cli import CommandError
from obd2_dashboard.kit.heap import freeze_startup_heap
from obd2_dashboard.kit.metrics import MULTIPROC_ENV, prepare_multiprocess_dir
from obd2_dashboard.ops.commands import prepare_embedded_storage
from obd2_dashboard.ops.migrations import upgrade_head
from obd2_dashboard.settings import Settings, load_settings

# Longer than nginx keeps an idle upstream connection (keepalive_timeout, 60 s by default):
# were the API to close one first, nginx could send a request on it as it closes, and answer
# that request (a POST is not retried) with a 502.
KEEP_ALIVE_S = 75

_UVICORN_OPTIONS = {
    "log_config": None,
    "proxy_headers": True,
    "forwarded_allow_ips": "127.0.0.1,::1",
    "server_header": False,
    "timeout_graceful_shutdown": 10,
    "timeout_keep_alive": KEEP_ALIVE_S,
}


def _uvicorn_options(settings: Settings) -> dict[str, object]:
    # No WebSocket message may be larger than the largest upload: a bigger one is refused from its
    # frame header (close code 1009) instead of being read into memory first.
    return {**_UVICORN_OPTIONS, "ws_max_size": settings.INGEST_MAX_BODY_BYTES}


def app_from_environment() -> FastAPI:
    """The app of one worker process of ``serve --workers N``: its own Settings and logging."""
    from obd2_dashboard.app import create_app
    from obd2_dashboard.kit.logging import configure_logging

    settings = load_settings()
    configure_logging(settings.LOG_LEVEL, settings.log_format.value)
    app = create_app(settings)
    freeze_startup_heap()
    return app


def serve(settings: Settings, *, host: str, port: int, workers: int = 1) -> None:
    if workers > 1 and settings.REDIS_URL is None:
        raise CommandError("--workers above 1 needs REDIS_URL: the embedded broker is per process")
    configured = os.environ.get(MULTIPROC_ENV)
    if configured or workers > 1:
        # Each start empties the directory, before any worker records a value.
        directory = Path(configured) if configured else settings.DATA_DIR / "prometheus-multiproc"
        os.environ[MULTIPROC_ENV] = str(prepare_multiprocess_dir(directory))
    if settings.DATABASE_URL is None:
        # The embedded database has no operator to run `migrate`: it is brought to head here.
        prepare_embedded_storage(settings)
        upgrade_head(settings.database_url)
    if workers > 1:
        uvicorn.run(
            f"{__name__}:app_from_environment",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            **_uvicorn_options(settings),  # type: ignore[arg-type]
        )
        return
    from obd2_dashboard.app import create_app

    app = create_app(settings)
    freeze_startup_heap()
    uvicorn.run(app, host=host, port=port, **_uvicorn_options(settings))  # type: ignore[arg-type]
