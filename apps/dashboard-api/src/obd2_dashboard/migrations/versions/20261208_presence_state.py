"""vehicles.live_since and the devices' upload and adapter-state times: the one state model

Revision ID: 20261208_presence_state
Revises: 20261208_i17_alerts
Create Date: 2026-12-08 02:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261208_presence_state"
down_revision: str | None = "20261208_i17_alerts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Expand-only: nullable columns; the previous release never names them, and a row without
    # them reads as before (presence/state.py falls back to last_seen_at).
    op.add_column("vehicles", sa.Column("live_since", sa.DateTime(timezone=True), nullable=True))
    op.add_column("devices", sa.Column("last_upload_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("devices", sa.Column("flowing_since", sa.DateTime(timezone=True), nullable=True))
    op.add_column("devices", sa.Column("adapter_state", sa.String(length=32), nullable=True))
    op.add_column(
        "devices", sa.Column("adapter_state_since", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    # Expand-only: migrations are never reversed in production (restore a backup instead).
    raise NotImplementedError("downgrades are not supported; restore the pre-migration backup")
