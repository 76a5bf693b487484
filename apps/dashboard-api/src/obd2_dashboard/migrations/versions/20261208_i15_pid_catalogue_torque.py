"""vehicle_pids (the PID catalogue), vehicle_events (Torque's notices), vehicle profile
settings, trips.fuel_flow_l

Revision ID: 20261208_i15_pid_catalogue
Revises: 20261208_outbox_backfill
Create Date: 2026-12-08 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261208_i15_pid_catalogue"
down_revision: str | None = "20261208_outbox_backfill"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Expand-only: new tables and nullable (or defaulted) columns the previous release ignores.
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "vehicle_pids",
        sa.Column("vehicle_id", big_id, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=True),
        sa.Column("short_name", sa.String(length=32), nullable=True),
        sa.Column("unit", sa.String(length=32), nullable=True),
        sa.Column("first_seen_ts", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["vehicle_id"],
            ["vehicles.id"],
            name=op.f("fk_vehicle_pids_vehicle_id_vehicles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("vehicle_id", "name", name=op.f("pk_vehicle_pids")),
    )
    # Every PID a vehicle sent before the catalogue existed, first seen at the start of its
    # oldest minute rollup (rollups outlive raw samples under retention and are far fewer).
    # Only names of the PID table could be stored then: the adapter's and the phone's values
    # come from an agent, the others are mode-01 PIDs.
    op.execute(
        "INSERT INTO vehicle_pids (vehicle_id, name, source, first_seen_ts, created_at) "
        "SELECT r.vehicle_id, r.pid, CASE WHEN r.pid IN ('ELM_VOLTAGE', 'GPS_LAT', 'GPS_LON', "
        "'GPS_ALT', 'GPS_SPEED', 'GPS_BEARING', 'GPS_ACCURACY') THEN 'agent' ELSE 'obd' END, "
        "min(r.bucket_ts), CURRENT_TIMESTAMP FROM sample_rollups_1m r "
        "JOIN vehicles v ON v.id = r.vehicle_id GROUP BY r.vehicle_id, r.pid"
    )
    op.create_table(
        "vehicle_events",
        sa.Column("id", big_id, nullable=False),
        sa.Column("vehicle_id", big_id, nullable=False),
        sa.Column("device_id", big_id, nullable=True),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("event_class", sa.String(length=200), nullable=False),
        sa.Column("message", sa.String(length=1000), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_vehicle_events_device_id_devices"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["vehicle_id"],
            ["vehicles.id"],
            name=op.f("fk_vehicle_events_vehicle_id_vehicles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vehicle_events")),
        sa.UniqueConstraint(
            "vehicle_id",
            "ts",
            "kind",
            "event_class",
            name=op.f("uq_vehicle_events_vehicle_id_ts_kind_event_class"),
        ),
    )
    op.create_index(
        "ix_vehicle_events_vehicle_id_ts", "vehicle_events", ["vehicle_id", "ts"], unique=False
    )
    op.add_column(
        "vehicles",
        sa.Column(
            "fuel_type_source", sa.String(length=16), server_default="default", nullable=False
        ),
    )
    # A fuel type other than the default was chosen by someone: the user, as nothing else could.
    op.execute("UPDATE vehicles SET fuel_type_source = 'user' WHERE fuel_type <> 'petrol'")
    op.add_column("vehicles", sa.Column("profile_name", sa.String(length=100), nullable=True))
    op.add_column("vehicles", sa.Column("weight_kg", sa.Float(), nullable=True))
    op.add_column("vehicles", sa.Column("volumetric_efficiency_pct", sa.Float(), nullable=True))
    op.add_column("trips", sa.Column("fuel_flow_l", sa.Float(), nullable=True))


def downgrade() -> None:
    # Expand-only: migrations are never reversed in production (restore a backup instead).
    raise NotImplementedError("downgrades are not supported; restore the pre-migration backup")
