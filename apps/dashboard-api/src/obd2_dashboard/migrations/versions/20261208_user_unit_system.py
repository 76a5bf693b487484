"""users.unit_system: each user reads figures in metric or imperial (US or UK gallons)

Revision ID: 20261208_user_unit_system
Revises: 20261207_share_invitations
Create Date: 2026-12-08 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261208_user_unit_system"
down_revision: str | None = "20261207_share_invitations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Expand-only: a column with a default, so every existing user reads metric as before and
    # the previous release, which never names it, inserts users as it did.
    op.add_column(
        "users",
        sa.Column("unit_system", sa.String(length=16), server_default="metric", nullable=False),
    )


def downgrade() -> None:
    # Expand-only: migrations are never reversed in production (restore a backup instead).
    raise NotImplementedError("downgrades are not supported; restore the pre-migration backup")
