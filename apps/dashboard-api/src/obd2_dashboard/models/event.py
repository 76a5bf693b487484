from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from obd2_dashboard.kit.db import Base, BigIntPK, UTCDateTime, utcnow


class VehicleEvent(Base):
    """Something a device told about the vehicle at an instant, such as Torque's notices
    ("Trip started"); shown on the timeline of the trip it falls in.

    (vehicle, ts, kind, event_class) is unique: an upload sent again stores nothing twice.
    """

    __tablename__ = "vehicle_events"
    __table_args__ = (
        UniqueConstraint("vehicle_id", "ts", "kind", "event_class"),
        Index("ix_vehicle_events_vehicle_id_ts", "vehicle_id", "ts"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    vehicle_id: Mapped[int] = mapped_column(ForeignKey("vehicles.id", ondelete="CASCADE"))
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id", ondelete="SET NULL"))
    # Epoch ms, the device's time.
    ts: Mapped[int] = mapped_column(BigInteger)
    # "notice" (Torque's notice/noticeClass).
    kind: Mapped[str] = mapped_column(String(16))
    # The sender's class of the event ("org.prowl.torque.map.notices.TripNotice"); "" if none.
    event_class: Mapped[str] = mapped_column(String(200))
    message: Mapped[str] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
