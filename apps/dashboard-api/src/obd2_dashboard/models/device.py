from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, LargeBinary, String, false
from sqlalchemy.orm import Mapped, mapped_column

from obd2_dashboard.kit.db import Base, BigIntPK, UTCDateTime, utcnow


class Device(Base):
    """A Bridge Agent (or Torque phone) allowed to ingest for one vehicle."""

    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    vehicle_id: Mapped[int] = mapped_column(
        ForeignKey("vehicles.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    # SHA-256 of the token: tokens carry 256 bits of randomness, so a slow hash buys nothing and
    # a fast one lets ingest look the device up by hash in one indexed query.
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    token_prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Anything from the device: an upload or an agent's status report.
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Uploads only (not backfill), and when the current stretch of them began: set by the
    # upload that follows a gap longer than DEVICE_SILENT_AFTER_S (presence/state.py).
    last_upload_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    flowing_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The adapter state of the agent's newest status report, and since when it has said so.
    adapter_state: Mapped[str | None] = mapped_column(String(32))
    adapter_state_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    agent_version: Mapped[str | None] = mapped_column(String(64))
    # A device the server uploads past data as (an import, the demo's history; see
    # devices.service.reissue_device): no alert rule reads its samples.
    backfill: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
