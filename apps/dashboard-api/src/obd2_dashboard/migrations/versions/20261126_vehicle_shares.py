"""vehicle shares

Revision ID: 20261126_shares
Revises: 20261126_dtcs
Create Date: 2026-11-26 17:22:38.929743
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261126_shares"
down_revision: str | None = "20261126_dtcs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "vehicle_shares",
        sa.Column(
            "vehicle_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_vehicle_shares_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["vehicle_id"],
            ["vehicles.id"],
            name=op.f("fk_vehicle_shares_vehicle_id_vehicles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("vehicle_id", "user_id", name=op.f("pk_vehicle_shares")),
    )
    op.create_index(op.f("ix_vehicle_shares_user_id"), "vehicle_shares", ["user_id"], unique=False)


def downgrade() -> None:
    # Expand-only: migrations are never reversed in production (restore a backup instead).
    raise NotImplementedError("downgrades are not supported; restore the pre-migration backup")
