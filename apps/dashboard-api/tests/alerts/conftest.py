from tests.alerts.helpers import (
    banner_listener,
    car,
    network,
    quiet_app,
    receiver,
    silent_listener,
)

__all__ = ["banner_listener", "car", "network", "quiet_app", "receiver", "silent_listener"]
