from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from obd2_dashboard.kit.db import Base, BigIntPK, UTCDateTime, utcnow


class VehicleDtc(Base):
    """One spell of a trouble code on a vehicle: from first report until it was cleared or gone.

    Times are epoch milliseconds as the agent reported them.
    """

    __tablename__ = "vehicle_dtcs"
    __table_args__ = (Index("ix_vehicle_dtcs_vehicle_id_cleared_at", "vehicle_id", "cleared_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    vehicle_id: Mapped[int] = mapped_column(ForeignKey("vehicles.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(12))
    first_seen: Mapped[int] = mapped_column(BigInteger)
    last_seen: Mapped[int] = mapped_column(BigInteger)
    cleared_at: Mapped[int | None] = mapped_column(BigInteger)
    # "cleared" (by a user's command, see cleared_by_user_id) or "gone" (no longer reported).
    clear_reason: Mapped[str | None] = mapped_column(String(16))
    cleared_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    freeze_frame: Mapped[str | None] = mapped_column(Text)


class DeviceCommand(Base):
    """A command for a vehicle's agent (clear DTCs), queued until the agent reports the outcome."""

    __tablename__ = "device_commands"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    vehicle_id: Mapped[int] = mapped_column(ForeignKey("vehicles.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    requested_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ok: Mapped[bool | None] = mapped_column(Boolean)
    detail: Mapped[str | None] = mapped_column(String(500))
