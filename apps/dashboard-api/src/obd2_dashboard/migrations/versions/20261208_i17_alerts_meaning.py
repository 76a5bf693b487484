"""alerts mean what they say: rules evaluated from when they were set, never over past-data
devices; alerts keep their condition so their text is written for each reader

Revision ID: 20261208_i17_alerts
Revises: 20261208_i15_pid_catalogue
Create Date: 2026-12-08 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261208_i17_alerts"
down_revision: str | None = "20261208_i15_pid_catalogue"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Expand-only: nullable or defaulted columns, so the previous release's INSERTs still work.
    # A rule without evaluates_from_ts is evaluated from its created_at.
    op.add_column("alert_rules", sa.Column("evaluates_from_ts", sa.BigInteger(), nullable=True))
    op.add_column(
        "devices",
        sa.Column("backfill", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    # The devices the server uploads past data as (imports, the demo's month) are found by name
    # (devices.service.reissue_device): the ones that exist already are marked here.
    op.execute(
        sa.text(
            "UPDATE devices SET backfill = :yes WHERE name IN ('Import', 'Demo history')"
        ).bindparams(yes=True)
    )
    # The condition an alert fired for; null for alerts of before (their stored message stands).
    op.add_column("alerts", sa.Column("op", sa.String(length=8), nullable=True))
    op.add_column("alerts", sa.Column("threshold", sa.Float(), nullable=True))
    op.add_column("alerts", sa.Column("duration_s", sa.Integer(), nullable=True))
    op.add_column("alerts", sa.Column("while_parked", sa.Boolean(), nullable=True))
    # History is listed by sample time, newest first, per vehicle.
    op.create_index("ix_alerts_vehicle_id_fired_ts_id", "alerts", ["vehicle_id", "fired_ts", "id"])


def downgrade() -> None:
    # Expand-only: migrations are never reversed in production (restore a backup instead).
    raise NotImplementedError("downgrades are not supported; restore the pre-migration backup")
