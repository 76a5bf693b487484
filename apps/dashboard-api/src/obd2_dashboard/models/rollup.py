from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Float, Integer, String, Text, false, text
from sqlalchemy.orm import Mapped, mapped_column

from obd2_dashboard.kit.db import Base, BigIntPK, UTCDateTime, utcnow

ROLLUP_BUCKET_MS = 60_000
# The second tier: a month at 1 000 points needs 44-minute buckets, which 15-minute rows answer
# with 2 880 rows instead of 43 200.
ROLLUP_15M_BUCKET_MS = 15 * ROLLUP_BUCKET_MS


class _RollupColumns:
    vehicle_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    pid: Mapped[str] = mapped_column(String(64), primary_key=True)
    bucket_ts: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(Integer)
    min: Mapped[float] = mapped_column(Float)
    max: Mapped[float] = mapped_column(Float)
    avg: Mapped[float] = mapped_column(Float)


class SampleRollup(_RollupColumns, Base):
    """Per-minute min/max/avg/count of one vehicle's PID: what long-range history reads.

    Always recomputed from the raw rows of its minute, never incremented, so delivering the
    same work twice (at-least-once streams) cannot skew it.
    """

    __tablename__ = "sample_rollups_1m"


class SampleRollup15m(_RollupColumns, Base):
    """Per-15-minute min/max/avg/count, recomputed from the minute rollups of its quarter hour."""

    __tablename__ = "sample_rollups_15m"


class IngestOutbox(Base):
    """Work owed for one stored batch, written in the batch's own transaction.

    The worker learns of it through the Redis stream (fast path) or by sweeping this table (when
    Redis was down), and deletes the row once the work is done: derived data never misses a batch.
    """

    __tablename__ = "ingest_outbox"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    vehicle_id: Mapped[int] = mapped_column(BigInteger)
    # "PID:bucket_ts" pairs, space-separated: the minutes this batch touched.
    buckets: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    # Failed tries so far, when the next may start and why the last one failed: a batch that
    # keeps failing is retried a bounded number of times, then moved to ``dead_letters``.
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Past data stored in bulk (the demo's month of history): its rollups and trips are built,
    # but it fires no alert and announces no trip, as nobody is to be told about it now.
    backfill: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class DeadLetter(Base):
    """A batch whose derived data (rollups, trips, alerts) the worker gave up on.

    Keeps what the outbox row held, so that ``obd2-dashboard dead-letters --retry`` can put it
    back; its raw samples stay stored and its history readable.
    """

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    outbox_id: Mapped[int] = mapped_column(BigInteger)
    vehicle_id: Mapped[int] = mapped_column(BigInteger, index=True)
    buckets: Mapped[str] = mapped_column(Text)
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    # When the batch was stored, and when it was given up on.
    batch_created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    backfill: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
