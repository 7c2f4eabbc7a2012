"""outbox: the relay deletes the rows it published (no published_at, no partial index of pending rows)

Revision ID: 773f116b6e31
Revises: e1effb9c4758
Create Date: 2026-12-02 06:20:00
"""

from collections.abc import Sequence

from shared.migrations import outbox_relay_deletes, outbox_relay_marks

revision: str = "773f116b6e31"
down_revision: str | None = "e1effb9c4758"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    outbox_relay_deletes("finance")


def downgrade() -> None:
    outbox_relay_marks("finance")
