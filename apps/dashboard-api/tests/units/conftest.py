from tests.alerts.helpers import car, network, quiet_app

__all__ = ["car", "network", "quiet_app"]
