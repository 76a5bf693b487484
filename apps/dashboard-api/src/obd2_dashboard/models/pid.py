from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from obd2_dashboard.kit.db import Base, UTCDateTime, utcnow


class VehiclePid(Base):
    """A PID a vehicle has sent (or that its device named): the vehicle's PID catalogue.

    Per vehicle, not global: a Torque custom PID or an imported column means what its owner's
    car and app make of it, and the UI offers each vehicle the PIDs it has. Names and units of
    the PIDs the server knows (our table, Torque's published key list) are not copied here:
    ``display_name``, ``short_name`` and ``unit`` hold only what a device or an import said
    of a PID the server knows nothing of.
    """

    __tablename__ = "vehicle_pids"

    vehicle_id: Mapped[int] = mapped_column(
        ForeignKey("vehicles.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    # "obd" (a mode-01 PID), "torque" (a Torque id), "agent" (the Bridge Agent's own values),
    # "import" (a column of an imported log): who defined it, set when first recorded.
    source: Mapped[str] = mapped_column(String(16))
    display_name: Mapped[str | None] = mapped_column(String(100))
    short_name: Mapped[str | None] = mapped_column(String(32))
    unit: Mapped[str | None] = mapped_column(String(32))
    # Epoch ms of the oldest sample stored under this name; None while only named.
    first_seen_ts: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
