"""deliveries.claimed_by: the claiming worker's lease key, so a dead worker's rows are taken over at once

Revision ID: 11e2b7482c05
Revises: 054fa4707e79
Create Date: 2026-12-05 17:10:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "11e2b7482c05"
down_revision: str | None = "054fa4707e79"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("deliveries", sa.Column("claimed_by", sa.BigInteger(), nullable=True), schema="notification")


def downgrade() -> None:
    op.drop_column("deliveries", "claimed_by", schema="notification")
