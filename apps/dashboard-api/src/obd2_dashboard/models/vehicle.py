from datetime import datetime
from enum import StrEnum

from sqlalchemy import Float, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from obd2_dashboard.kit.db import Base, BigIntPK, UTCDateTime, utcnow


class FuelType(StrEnum):
    petrol = "petrol"
    diesel = "diesel"


class Vehicle(Base):
    __tablename__ = "vehicles"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    vin: Mapped[str | None] = mapped_column(String(17))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When the current stretch of live uploads began (presence/state.py); set by the upload
    # that follows a gap longer than VEHICLE_STALE_AFTER_S.
    live_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Turns MAF readings into litres (air-fuel ratio and density differ): see trips.summary.
    fuel_type: Mapped[str] = mapped_column(
        String(16), default=FuelType.petrol.value, server_default=FuelType.petrol.value
    )
    # Who chose fuel_type: "default" (nobody: petrol), "user" or "torque" (the phone's profile).
    # A device fills a setting nobody chose and never one the user set.
    fuel_type_source: Mapped[str] = mapped_column(
        String(16), default="default", server_default="default"
    )
    # The name of the vehicle's profile in Torque, its weight and its engine's volumetric
    # efficiency (%), as the user or Torque's profile gave them; None while nobody did.
    profile_name: Mapped[str | None] = mapped_column(String(100))
    weight_kg: Mapped[float | None] = mapped_column(Float)
    volumetric_efficiency_pct: Mapped[float | None] = mapped_column(Float)


class VehicleShare(Base):
    """Read-only access to a vehicle, granted by its owner to another user."""

    __tablename__ = "vehicle_shares"

    vehicle_id: Mapped[int] = mapped_column(
        ForeignKey("vehicles.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ShareInvitation(Base):
    """An owner's offer of read-only access, addressed to an email: it becomes a
    ``VehicleShare`` only when the account with that email accepts it. Sharing says the same
    whether or not the email has an account, and grants nothing unasked."""

    __tablename__ = "share_invitations"
    __table_args__ = (UniqueConstraint("vehicle_id", "email"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    vehicle_id: Mapped[int] = mapped_column(ForeignKey("vehicles.id", ondelete="CASCADE"))
    invited_by: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # Normalised (auth.service.normalize_email), like users.email.
    email: Mapped[str] = mapped_column(String(320), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
