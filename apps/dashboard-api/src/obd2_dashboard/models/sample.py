from sqlalchemy import BigInteger, Float, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from obd2_dashboard.kit.db import Base


class Sample(Base):
    """One reading. (device_id, seq) is the primary key: a replayed batch stores nothing twice."""

    __tablename__ = "samples"
    __table_args__ = (
        # History queries are "one vehicle, one PID, a time range": this index answers them with
        # one range scan, newest rows clustered at the end of each (vehicle, pid) run.
        Index("ix_samples_vehicle_id_pid_ts", "vehicle_id", "pid", "ts"),
        # Rows arrive roughly in time order, so a BRIN on ts is a few pages for tens of millions of
        # rows and serves retention and whole-fleet range scans.
        Index("ix_samples_ts_brin", "ts", postgresql_using="brin"),
    )

    # No foreign keys: at ingest rates a per-row FK check costs more than it protects, and
    # deleting a vehicle removes its samples explicitly (vehicles repository).
    device_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    vehicle_id: Mapped[int] = mapped_column(BigInteger)
    ts: Mapped[int] = mapped_column(BigInteger)
    pid: Mapped[str] = mapped_column(String(64))
    value: Mapped[float] = mapped_column(Float)
