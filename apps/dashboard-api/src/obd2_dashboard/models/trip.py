from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from obd2_dashboard.kit.db import Base, BigIntPK, UTCDateTime, utcnow


class Trip(Base):
    """One drive (engine on → off, short stops joined), summarised when the worker saw it.

    Everything the trips list shows is a column here, so listing never reads raw samples.
    """

    __tablename__ = "trips"
    __table_args__ = (
        # The list is "one vehicle, newest first, a page at a time": a keyset scan of this index.
        # The worker finds the trips near new samples with the same index.
        Index("ix_trips_vehicle_id_start_ts_id", "vehicle_id", "start_ts", "id"),
        # The worker looks for trips to declare finished every few seconds: the few not yet.
        Index(
            "ix_trips_end_ts_unfinished",
            "end_ts",
            postgresql_where=text("finished_at IS NULL"),
            sqlite_where=text("finished_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    vehicle_id: Mapped[int] = mapped_column(ForeignKey("vehicles.id", ondelete="CASCADE"))
    # Epoch ms of the first and last sample that shows the engine running or the car moving.
    start_ts: Mapped[int] = mapped_column(BigInteger)
    end_ts: Mapped[int] = mapped_column(BigInteger)
    distance_km: Mapped[float] = mapped_column(Float)
    # "odometer" (its delta) or "speed" (SPEED integrated over time).
    distance_source: Mapped[str] = mapped_column(String(16))
    moving_s: Mapped[float] = mapped_column(Float)
    idle_s: Mapped[float] = mapped_column(Float)
    max_speed_kmh: Mapped[float | None] = mapped_column(Float)
    max_rpm: Mapped[float | None] = mapped_column(Float)
    max_coolant_c: Mapped[float | None] = mapped_column(Float)
    # Litres integrated from FUEL_RATE, when the car reports it.
    fuel_rate_l: Mapped[float | None] = mapped_column(Float)
    # Litres integrated from Torque's fuel flow (TORQUE_FF125D, L/h), when the phone sends it.
    fuel_flow_l: Mapped[float | None] = mapped_column(Float)
    # Grams of air integrated from MAF: turned into fuel when read, with the vehicle's fuel type,
    # so correcting the fuel type needs no recomputation.
    air_g: Mapped[float | None] = mapped_column(Float)
    sample_count: Mapped[int] = mapped_column(Integer)
    track_points: Mapped[int] = mapped_column(Integer)
    # The segmenter's running totals and last readings (JSON), so samples that arrive after the
    # trip's end extend it without re-reading the whole drive. Never read by the API.
    state: Mapped[str] = mapped_column(Text, deferred=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    # When the worker saw no sample of the car in use for the join gap after the trip's end and
    # sent trip.finished; a trip is finished once (late samples may still change its summary).
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class TripPoint(Base):
    """A GPS fix of a trip's track (GPS_LAT and GPS_LON samples of the same instant)."""

    __tablename__ = "trip_points"

    trip_id: Mapped[int] = mapped_column(
        ForeignKey("trips.id", ondelete="CASCADE"), primary_key=True
    )
    ts: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
