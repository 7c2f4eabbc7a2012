"""outbox: headers and payload as json (text as written), no unique index on event_id

Revision ID: bdafdf263809
Revises: be9d9c7cc53c
Create Date: 2026-12-02 06:20:00
"""
from collections.abc import Sequence

from shared.migrations import outbox_json_columns, outbox_jsonb_columns

revision: str = "bdafdf263809"
down_revision: str | None = "be9d9c7cc53c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    outbox_json_columns("evaluation")


def downgrade() -> None:
    outbox_jsonb_columns("evaluation")
