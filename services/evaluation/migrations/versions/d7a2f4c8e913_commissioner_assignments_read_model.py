"""commissioner assignments read model (commissioner scope in evaluation, from notification's commissioner events)

Revision ID: d7a2f4c8e913
Revises: c4e1a9d27f60
Create Date: 2026-12-05 14:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d7a2f4c8e913"
down_revision: str | None = "c4e1a9d27f60"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "commissioner_assignments",
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("commissioner_id", sa.String(length=64), nullable=True),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.String(length=100), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("uscc", name=op.f("pk_commissioner_assignments")),
        schema="evaluation",
    )
    op.create_index(
        op.f("ix_commissioner_assignments_commissioner_id"), "commissioner_assignments", ["commissioner_id"],
        unique=False, schema="evaluation",
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_commissioner_assignments_commissioner_id"), table_name="commissioner_assignments", schema="evaluation"
    )
    op.drop_table("commissioner_assignments", schema="evaluation")
