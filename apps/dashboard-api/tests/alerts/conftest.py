from tests.alerts.helpers import car, quiet_app

__all__ = ["car", "quiet_app"]
