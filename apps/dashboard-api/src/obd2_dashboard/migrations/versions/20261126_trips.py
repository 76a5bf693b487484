"""trips: per-drive summaries, their GPS tracks, and the vehicle's fuel type

Revision ID: 20261126_trips
Revises: 20261126_shares
Create Date: 2026-11-26 17:20:49.069305
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261126_trips"
down_revision: str | None = "20261126_shares"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Expand-only: new tables and a defaulted column, so code of the previous release keeps working.
    op.create_table(
        "trips",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "vehicle_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("start_ts", sa.BigInteger(), nullable=False),
        sa.Column("end_ts", sa.BigInteger(), nullable=False),
        sa.Column("distance_km", sa.Float(), nullable=False),
        sa.Column("distance_source", sa.String(length=16), nullable=False),
        sa.Column("moving_s", sa.Float(), nullable=False),
        sa.Column("idle_s", sa.Float(), nullable=False),
        sa.Column("max_speed_kmh", sa.Float(), nullable=True),
        sa.Column("max_rpm", sa.Float(), nullable=True),
        sa.Column("max_coolant_c", sa.Float(), nullable=True),
        sa.Column("fuel_rate_l", sa.Float(), nullable=True),
        sa.Column("air_g", sa.Float(), nullable=True),
        sa.Column("sample_count", sa.Integer(), nullable=False),
        sa.Column("track_points", sa.Integer(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["vehicle_id"],
            ["vehicles.id"],
            name=op.f("fk_trips_vehicle_id_vehicles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trips")),
    )
    op.create_index(
        "ix_trips_vehicle_id_start_ts_id", "trips", ["vehicle_id", "start_ts", "id"], unique=False
    )
    op.create_table(
        "trip_points",
        sa.Column("trip_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("ts", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["trip_id"],
            ["trips.id"],
            name=op.f("fk_trip_points_trip_id_trips"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("trip_id", "ts", name=op.f("pk_trip_points")),
    )
    op.add_column(
        "vehicles",
        sa.Column("fuel_type", sa.String(length=16), server_default="petrol", nullable=False),
    )


def downgrade() -> None:
    # Expand-only: migrations are never reversed in production (restore a backup instead).
    raise NotImplementedError("downgrades are not supported; restore the pre-migration backup")
