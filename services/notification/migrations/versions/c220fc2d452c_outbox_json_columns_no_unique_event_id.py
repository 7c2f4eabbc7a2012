"""outbox: headers and payload as json (text as written), no unique index on event_id

Revision ID: c220fc2d452c
Revises: be2362cb41b5
Create Date: 2026-12-02 06:20:00
"""
from collections.abc import Sequence

from shared.migrations import outbox_json_columns, outbox_jsonb_columns

revision: str = "c220fc2d452c"
down_revision: str | None = "be2362cb41b5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    outbox_json_columns("notification")


def downgrade() -> None:
    outbox_jsonb_columns("notification")
