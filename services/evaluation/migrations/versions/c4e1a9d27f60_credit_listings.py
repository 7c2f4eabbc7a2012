"""credit listings from the 信用 feed (严重失信 / 经营异常), active until lifted

Revision ID: c4e1a9d27f60
Revises: bdafdf263809
Create Date: 2026-12-05 14:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "c4e1a9d27f60"
down_revision: str | None = "bdafdf263809"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "credit_listings",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("listing", sa.String(length=40), nullable=False),
        sa.Column("agency", sa.String(length=100), nullable=False),
        sa.Column("listed_on", sa.Date(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("decision_no", sa.String(length=100), nullable=True),
        sa.Column("lifted_on", sa.Date(), nullable=True),
        sa.Column("lift_reason", sa.Text(), nullable=True),
        sa.Column("lifted_by", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_listings")),
        schema="evaluation",
    )
    op.create_index(op.f("ix_credit_listings_uscc"), "credit_listings", ["uscc"], unique=False, schema="evaluation")
    op.create_index("uq_credit_listings_active", "credit_listings", ["uscc", "listing"], unique=True,
                    schema="evaluation", postgresql_where=sa.text("lifted_on IS NULL"))


def downgrade() -> None:
    op.drop_index("uq_credit_listings_active", table_name="credit_listings", schema="evaluation")
    op.drop_index(op.f("ix_credit_listings_uscc"), table_name="credit_listings", schema="evaluation")
    op.drop_table("credit_listings", schema="evaluation")
