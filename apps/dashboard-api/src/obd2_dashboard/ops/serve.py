import os
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from obd2_dashboard.app import create_app
from obd2_dashboard.kit.heap import freeze_startup_heap
from obd2_dashboard.kit.logging import configure_logging
from obd2_dashboard.kit.metrics import MULTIPROC_ENV, prepare_multiprocess_dir
from obd2_dashboard.kit.server_protocol import HeaderTimeoutProtocol
from obd2_dashboard.ops.commands import prepare_embedded_storage
from obd2_dashboard.ops.errors import CommandError
from obd2_dashboard.ops.migrations import upgrade_head
from obd2_dashboard.settings import Settings, load_settings

# The default keep-alive (see Settings.HTTP_KEEP_ALIVE_S): longer than nginx's.
KEEP_ALIVE_S: int = Settings.model_fields["HTTP_KEEP_ALIVE_S"].default

WORKER_HEALTHCHECK_TIMEOUT_S = 60

_UVICORN_OPTIONS = {
    "log_config": None,
    "proxy_headers": True,
    "forwarded_allow_ips": "127.0.0.1,::1",
    "server_header": False,
    "timeout_graceful_shutdown": 10,
    # With --workers, uvicorn kills a worker that does not answer its health ping within this
    # long and starts another. Its default, 5 s, is less than a worker's start (importing the
    # app) takes on a small or busy server: the install test's emulated machine restarted its
    # workers for ever and never got ready. A worker that hangs is still replaced, later.
    "timeout_worker_healthcheck": WORKER_HEALTHCHECK_TIMEOUT_S,
    # uvicorn's own protocol waits for ever on a client that sends part of its headers.
    "http": HeaderTimeoutProtocol,
}


def _uvicorn_options(settings: Settings) -> dict[str, object]:
    HeaderTimeoutProtocol.header_timeout_s = settings.HTTP_HEADER_TIMEOUT_S
    return {
        **_UVICORN_OPTIONS,
        "timeout_keep_alive": settings.HTTP_KEEP_ALIVE_S,
        # No WebSocket message may be larger than the largest upload: a bigger one is refused
        # from its frame header (close code 1009) instead of being read into memory first.
        "ws_max_size": settings.INGEST_MAX_BODY_BYTES,
    }


def app_from_environment() -> FastAPI:
    """The app of one worker process of ``serve --workers N``: its own Settings and logging."""
    settings = load_settings()
    configure_logging(settings.LOG_LEVEL, settings.log_format.value)
    # This process's own copy of the protocol class: the parent's setting did not travel here.
    HeaderTimeoutProtocol.header_timeout_s = settings.HTTP_HEADER_TIMEOUT_S
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
    app = create_app(settings)
    freeze_startup_heap()
    uvicorn.run(app, host=host, port=port, **_uvicorn_options(settings))  # type: ignore[arg-type]
