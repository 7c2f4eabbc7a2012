"""outbox: the relay deletes the rows it published (no published_at, no partial index of pending rows)

Revision ID: be9d9c7cc53c
Revises: a061cf3177bf
Create Date: 2026-12-02 06:20:00
"""
from collections.abc import Sequence

from shared.migrations import outbox_relay_deletes, outbox_relay_marks

revision: str = "be9d9c7cc53c"
down_revision: str | None = "a061cf3177bf"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    outbox_relay_deletes("evaluation")


def downgrade() -> None:
    outbox_relay_marks("evaluation")
