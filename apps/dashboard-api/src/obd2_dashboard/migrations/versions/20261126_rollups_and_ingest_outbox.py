"""rollups and ingest outbox

Revision ID: 20261126_rollups
Revises: 20261126_initial
Create Date: 2026-11-26 16:59:44.878731
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261126_rollups"
down_revision: str | None = "20261126_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ingest_outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("vehicle_id", sa.BigInteger(), nullable=False),
        sa.Column("buckets", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingest_outbox")),
    )
    op.create_index(
        op.f("ix_ingest_outbox_created_at"), "ingest_outbox", ["created_at"], unique=False
    )
    op.create_table(
        "sample_rollups_1m",
        sa.Column("vehicle_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("pid", sa.String(length=64), nullable=False),
        sa.Column("bucket_ts", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("min", sa.Float(), nullable=False),
        sa.Column("max", sa.Float(), nullable=False),
        sa.Column("avg", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint(
            "vehicle_id", "pid", "bucket_ts", name=op.f("pk_sample_rollups_1m")
        ),
    )


def downgrade() -> None:
    # Expand-only: migrations are never reversed in production (restore a backup instead).
    raise NotImplementedError("downgrades are not supported; restore the pre-migration backup")
