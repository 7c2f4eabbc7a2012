"""outbox: headers and payload as json (text as written), no unique index on event_id

Revision ID: 1c1ee182bac2
Revises: d138923df649
Create Date: 2026-12-02 06:20:00
"""
from collections.abc import Sequence

from shared.migrations import outbox_json_columns, outbox_jsonb_columns

revision: str = "1c1ee182bac2"
down_revision: str | None = "d138923df649"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    outbox_json_columns("registry")


def downgrade() -> None:
    outbox_jsonb_columns("registry")
