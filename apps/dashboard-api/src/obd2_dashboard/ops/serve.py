from typing import Any

import uvicorn
from fastapi import FastAPI

from obd2_dashboard.app import create_app
from obd2_dashboard.cli import CommandError
from obd2_dashboard.ops.commands import prepare_embedded_storage
from obd2_dashboard.ops.migrations import upgrade_head
from obd2_dashboard.settings import Settings, load_settings

APP_FACTORY = "obd2_dashboard.ops.serve:app_from_environment"


def app_from_environment() -> FastAPI:
    """The app of one worker process of ``serve --workers N`` (each reads the environment)."""
    from obd2_dashboard.kit.logging import configure_logging

    settings = load_settings()
    configure_logging(settings.LOG_LEVEL, settings.log_format.value)
    return create_app(settings)


def check_workers(settings: Settings, workers: int) -> None:
    if workers <= 1:
        return
    # Worker processes share nothing but the database and Redis.
    if settings.REDIS_URL is None:
        raise CommandError("--workers above 1 needs REDIS_URL: the embedded broker is per process")
    if settings.DATABASE_URL is None:
        raise CommandError("--workers above 1 needs DATABASE_URL (PostgreSQL)")
    if settings.SESSION_SECRET is None:
        raise CommandError("--workers above 1 needs SESSION_SECRET: one for every process")


def serve(settings: Settings, *, host: str, port: int, workers: int = 1) -> None:
    check_workers(settings, workers)
    if settings.DATABASE_URL is None:
        # The embedded database has no operator to run `migrate`: it is brought to head here.
        prepare_embedded_storage(settings)
        upgrade_head(settings.database_url)
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_config": None,
        "proxy_headers": True,
        "forwarded_allow_ips": "127.0.0.1,::1",
        "server_header": False,
        "timeout_graceful_shutdown": 10,
    }
    if workers == 1:
        uvicorn.run(create_app(settings), **options)
    else:
        # Several processes need an import string: each builds its own app from the environment.
        # A worker gets 30 s to answer the supervisor's ping (uvicorn's 5 s kills workers that
        # are merely slow to import on a small, busy machine, and then restarts them forever).
        uvicorn.run(
            APP_FACTORY,
            factory=True,
            workers=workers,
            timeout_worker_healthcheck=30,
            **options,
        )
