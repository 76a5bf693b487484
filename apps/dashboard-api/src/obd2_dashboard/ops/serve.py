import uvicorn

from obd2_dashboard.app import create_app
from obd2_dashboard.ops.commands import prepare_embedded_storage
from obd2_dashboard.ops.migrations import upgrade_head
from obd2_dashboard.settings import Settings


def serve(settings: Settings, *, host: str, port: int) -> None:
    if settings.DATABASE_URL is None:
        # The embedded database has no operator to run `migrate`: it is brought to head here.
        prepare_embedded_storage(settings)
        upgrade_head(settings.database_url)
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_config=None,
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1,::1",
        server_header=False,
        timeout_graceful_shutdown=10,
    )
