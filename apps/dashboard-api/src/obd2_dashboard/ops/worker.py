import asyncio
import signal
import sys

from prometheus_client import start_http_server

from obd2_dashboard.background import worker_companions
from obd2_dashboard.kit.broker import make_broker
from obd2_dashboard.kit.db import make_engine, make_sessionmaker
from obd2_dashboard.ops.errors import EXIT_OK, CommandError
from obd2_dashboard.ops.redis_bootstrap import bootstrap
from obd2_dashboard.settings import Settings
from obd2_dashboard.telemetry.worker import RollupWorker, WorkerConfig


async def run_worker(settings: Settings) -> int:
    if settings.REDIS_URL is None:
        raise CommandError(
            "REDIS_URL is not set: with the embedded broker the worker runs inside `serve`"
        )
    engine = make_engine(settings.database_url, pool_size=4)
    broker = make_broker(settings.REDIS_URL, settings.REDIS_KEY_PREFIX)
    if settings.WORKER_METRICS_PORT:
        try:
            start_http_server(settings.WORKER_METRICS_PORT, addr="127.0.0.1")
        except OSError as exc:
            # Metrics are worth having, not worth refusing to work for.
            print(f"worker: no metrics endpoint: {exc}", file=sys.stderr)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        try:
            # Idempotent; also repairs the group after a Redis restart that kept nothing.
            await bootstrap(broker)
        except Exception as exc:
            print(f"worker: Redis not ready yet ({type(exc).__name__}); retrying", file=sys.stderr)
        sessionmaker = make_sessionmaker(engine)
        config = WorkerConfig.from_settings(settings)
        companions = worker_companions(settings, sessionmaker, broker, consumer=config.consumer)
        worker = RollupWorker(sessionmaker, broker, config, companions)
        await worker.run(stop)
    finally:
        await broker.close()
        await engine.dispose()
    return EXIT_OK
