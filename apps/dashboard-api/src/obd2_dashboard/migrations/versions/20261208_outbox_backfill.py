"""backfill: stored batches of past data (the demo's month) build trips and rollups only

Revision ID: 20261208_outbox_backfill
Revises: 20261208_user_unit_system
Create Date: 2026-12-08 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261208_outbox_backfill"
down_revision: str | None = "20261208_user_unit_system"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Expand-only: defaulted columns, so the previous release's INSERTs still work.
    op.add_column(
        "ingest_outbox",
        sa.Column("backfill", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column(
        "dead_letters",
        sa.Column("backfill", sa.Boolean(), server_default=sa.false(), nullable=False),
    )


def downgrade() -> None:
    # Expand-only: migrations are never reversed in production (restore a backup instead).
    raise NotImplementedError("downgrades are not supported; restore the pre-migration backup")
