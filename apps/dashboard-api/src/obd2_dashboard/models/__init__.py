"""Every table of the server; Alembic reads ``Base.metadata`` from here."""

from obd2_dashboard.kit.db import Base
from obd2_dashboard.models.device import Device
from obd2_dashboard.models.sample import Sample
from obd2_dashboard.models.user import User, UserSession
from obd2_dashboard.models.vehicle import Vehicle

__all__ = ["Base", "Device", "Sample", "User", "UserSession", "Vehicle"]
