"""outbox: headers and payload as json (text as written), no unique index on event_id

Revision ID: d56058a41a0d
Revises: 773f116b6e31
Create Date: 2026-12-02 06:20:00
"""

from collections.abc import Sequence

from shared.migrations import outbox_json_columns, outbox_jsonb_columns

revision: str = "d56058a41a0d"
down_revision: str | None = "773f116b6e31"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    outbox_json_columns("finance")


def downgrade() -> None:
    outbox_jsonb_columns("finance")
