"""trips: when each was declared finished (for the trip.finished event)

Revision ID: 20261126_trip_finished
Revises: 20261126_rollups_15m
Create Date: 2026-11-26 21:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261126_trip_finished"
down_revision: str | None = "20261126_rollups_15m"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Expand-only: a nullable column; the previous release ignores it.
    op.add_column("trips", sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True))
    # Trips stored before events existed count as finished: no flood of trip.finished events for
    # the history (a trip in progress during the upgrade gets none either).
    op.execute("UPDATE trips SET finished_at = updated_at")
    op.create_index(
        "ix_trips_end_ts_unfinished",
        "trips",
        ["end_ts"],
        unique=False,
        postgresql_where=sa.text("finished_at IS NULL"),
        sqlite_where=sa.text("finished_at IS NULL"),
    )


def downgrade() -> None:
    # Expand-only: migrations are never reversed in production (restore a backup instead).
    raise NotImplementedError("downgrades are not supported; restore the pre-migration backup")
