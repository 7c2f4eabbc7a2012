"""enterprise legal representative (法定代表人, from the market-supervision feed)

Revision ID: 5a7c2e91d3b4
Revises: 1c1ee182bac2
Create Date: 2026-12-05 14:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5a7c2e91d3b4"
down_revision: str | None = "1c1ee182bac2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("enterprises", sa.Column("legal_representative", sa.String(length=100), nullable=True),
                  schema="registry")


def downgrade() -> None:
    op.drop_column("enterprises", "legal_representative", schema="registry")
