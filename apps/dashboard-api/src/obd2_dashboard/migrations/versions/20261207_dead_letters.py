"""dead letters: batches the worker gave up on, and the outbox's retry bookkeeping

Revision ID: 20261207_dead_letters
Revises: 20261126_trip_finished
Create Date: 2026-12-07 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261207_dead_letters"
down_revision: str | None = "20261126_trip_finished"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Expand-only: nullable or defaulted columns, so the previous release's INSERTs still work,
    # and a new table it never reads.
    op.add_column(
        "ingest_outbox",
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column(
        "ingest_outbox", sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("ingest_outbox", sa.Column("last_error", sa.Text(), nullable=True))
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("outbox_id", sa.BigInteger(), nullable=False),
        sa.Column("vehicle_id", sa.BigInteger(), nullable=False),
        sa.Column("buckets", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("batch_created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
    )
    op.create_index(
        op.f("ix_dead_letters_vehicle_id"), "dead_letters", ["vehicle_id"], unique=False
    )
    op.create_index(
        op.f("ix_dead_letters_created_at"), "dead_letters", ["created_at"], unique=False
    )


def downgrade() -> None:
    # Expand-only: migrations are never reversed in production (restore a backup instead).
    raise NotImplementedError("downgrades are not supported; restore the pre-migration backup")
