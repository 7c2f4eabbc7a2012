"""commissioner assignments read model (commissioner scope, from notification's commissioner events)

Revision ID: 87ce4a971acf
Revises: 1d161813135c
Create Date: 2026-11-22 04:49:12.157110
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "87ce4a971acf"
down_revision: str | None = "1d161813135c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "commissioner_assignments",
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("commissioner_id", sa.String(length=64), nullable=True),
        sa.Column("commissioner_name", sa.Text(), nullable=True),
        sa.Column("region_code", sa.String(length=6), nullable=True),
        sa.Column("tier", sa.String(length=40), nullable=True),
        sa.Column("level", sa.String(length=10), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.String(length=100), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("uscc", name=op.f("pk_commissioner_assignments")),
        schema="registry",
    )
    op.create_index(
        op.f("ix_commissioner_assignments_commissioner_id"),
        "commissioner_assignments",
        ["commissioner_id"],
        unique=False,
        schema="registry",
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_commissioner_assignments_commissioner_id"), table_name="commissioner_assignments", schema="registry"
    )
    op.drop_table("commissioner_assignments", schema="registry")
