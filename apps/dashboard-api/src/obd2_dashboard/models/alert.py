from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from obd2_dashboard.kit.db import Base, BigIntPK, UTCDateTime, utcnow


class AlertRule(Base):
    """A per-vehicle condition worth telling the owner about, and where to tell it.

    ``kind`` is ``threshold`` (a PID above/below a value for a duration), ``silence`` (no sample
    for some minutes) or ``dtc`` (a new trouble code). The row is also the rule's lock: the worker
    holds it while it decides whether to fire, so two workers never fire one episode twice.
    """

    __tablename__ = "alert_rules"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    vehicle_id: Mapped[int] = mapped_column(
        ForeignKey("vehicles.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    pid: Mapped[str | None] = mapped_column(String(64))
    op: Mapped[str | None] = mapped_column(String(8))
    threshold: Mapped[float | None] = mapped_column(Float)
    # Hysteresis: once firing, the condition holds until the value crosses this one.
    clear_threshold: Mapped[float | None] = mapped_column(Float)
    duration_s: Mapped[int] = mapped_column(Integer, default=0)
    while_parked: Mapped[bool] = mapped_column(Boolean, default=False)
    silence_minutes: Mapped[int | None] = mapped_column(Integer)
    # A silence rule on one device; none: any device of the vehicle.
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    cooldown_s: Mapped[int] = mapped_column(Integer, default=300)
    webhook_url: Mapped[str | None] = mapped_column(String(2048))
    webhook_secret: Mapped[str | None] = mapped_column(String(128))
    mqtt: Mapped[bool] = mapped_column(Boolean, default=True)
    # True while an alert of this rule is open (fired and not cleared).
    firing: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Epoch ms (server clock) from which samples count: set when the rule is made and whenever
    # its condition changes or it is resumed, so no alert is dated before the rule said so.
    # Null (rules of before): created_at.
    evaluates_from_ts: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class Alert(Base):
    """One firing of a rule: the episode it covers, in sample time (epoch ms), and its ack."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_vehicle_id_id", "vehicle_id", "id"),
        Index("ix_alerts_rule_id_fired_ts", "rule_id", "fired_ts"),
        Index("ix_alerts_vehicle_id_fired_ts_id", "vehicle_id", "fired_ts", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    vehicle_id: Mapped[int] = mapped_column(ForeignKey("vehicles.id", ondelete="CASCADE"))
    # History outlives its rule.
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("alert_rules.id", ondelete="SET NULL"))
    rule_name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    # The PID, the DTC code or the device the alert is about.
    subject: Mapped[str] = mapped_column(String(64))
    # As written when it fired, in the owner's units: what webhooks and MQTT were sent. Readers
    # get a text of their own, written from the fields below (alerts.text).
    message: Mapped[str] = mapped_column(String(300))
    value: Mapped[float | None] = mapped_column(Float)
    # A threshold alert's condition as it was when it fired (the rule may change or go since);
    # null for other kinds and for alerts of before.
    op: Mapped[str | None] = mapped_column(String(8), nullable=True)
    threshold: Mapped[float | None] = mapped_column(Float, nullable=True)
    duration_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    while_parked: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    started_ts: Mapped[int] = mapped_column(BigInteger)
    fired_ts: Mapped[int] = mapped_column(BigInteger)
    cleared_ts: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class AlertDelivery(Base):
    """One message owed to one channel (webhook or MQTT), retried with backoff until done.

    Written in the transaction that fired or cleared the alert, so a crash never loses one; the
    body is stored so every retry sends (and signs) the same bytes.
    """

    __tablename__ = "alert_deliveries"
    __table_args__ = (
        UniqueConstraint("alert_id", "channel", "event"),
        Index("ix_alert_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    event: Mapped[str] = mapped_column(String(16))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_error: Mapped[str | None] = mapped_column(String(300))
    response_status: Mapped[int | None] = mapped_column(Integer)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
