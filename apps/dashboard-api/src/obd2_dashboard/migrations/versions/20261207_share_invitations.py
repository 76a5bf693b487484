"""share_invitations: sharing a vehicle offers access; the invitee accepts it

Revision ID: 20261207_share_invitations
Revises: 20261207_dead_letters
Create Date: 2026-12-07 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261207_share_invitations"
down_revision: str | None = "20261207_dead_letters"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Expand-only: a new table; the previous release never reads it.
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "share_invitations",
        sa.Column("id", big_id, nullable=False),
        sa.Column("vehicle_id", big_id, nullable=False),
        sa.Column("invited_by", big_id, nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["invited_by"],
            ["users.id"],
            name=op.f("fk_share_invitations_invited_by_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["vehicle_id"],
            ["vehicles.id"],
            name=op.f("fk_share_invitations_vehicle_id_vehicles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_share_invitations")),
        sa.UniqueConstraint(
            "vehicle_id", "email", name=op.f("uq_share_invitations_vehicle_id_email")
        ),
    )
    op.create_index(
        op.f("ix_share_invitations_email"), "share_invitations", ["email"], unique=False
    )


def downgrade() -> None:
    # Expand-only: migrations are never reversed in production (restore a backup instead).
    raise NotImplementedError("downgrades are not supported; restore the pre-migration backup")
