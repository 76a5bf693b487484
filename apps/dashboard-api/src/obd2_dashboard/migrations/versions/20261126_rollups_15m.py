"""rollups_15m

Revision ID: 20261126_rollups_15m
Revises: 20261126_alerts
Create Date: 2026-11-26 20:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261126_rollups_15m"
down_revision: str | None = "20261126_alerts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Expand-only: a new table, filled from the minute rollups; release N-1 never reads it.
    op.create_table(
        "sample_rollups_15m",
        sa.Column("vehicle_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("pid", sa.String(length=64), nullable=False),
        sa.Column("bucket_ts", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("min", sa.Float(), nullable=False),
        sa.Column("max", sa.Float(), nullable=False),
        sa.Column("avg", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint(
            "vehicle_id", "pid", "bucket_ts", name=op.f("pk_sample_rollups_15m")
        ),
    )
    op.execute(
        "INSERT INTO sample_rollups_15m (vehicle_id, pid, bucket_ts, count, min, max, avg) "
        "SELECT vehicle_id, pid, bucket_ts - bucket_ts % 900000, sum(count), min(min), max(max), "
        "sum(avg * count) / sum(count) FROM sample_rollups_1m "
        "GROUP BY vehicle_id, pid, bucket_ts - bucket_ts % 900000"
    )


def downgrade() -> None:
    # Expand-only: migrations are never reversed in production (restore a backup instead).
    raise NotImplementedError("downgrades are not supported; restore the pre-migration backup")
