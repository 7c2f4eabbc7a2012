"""disbursements.claimed_by: the claiming worker's lease key, so a dead worker's instruction is taken over at once

Revision ID: f6d7bee14e20
Revises: 86c4ededa2ec
Create Date: 2026-12-05 17:10:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f6d7bee14e20"
down_revision: str | None = "86c4ededa2ec"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("disbursements", sa.Column("claimed_by", sa.BigInteger(), nullable=True), schema="finance")


def downgrade() -> None:
    op.drop_column("disbursements", "claimed_by", schema="finance")
