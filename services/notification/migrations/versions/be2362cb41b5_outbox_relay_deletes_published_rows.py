"""outbox: the relay deletes the rows it published (no published_at, no partial index of pending rows)

Revision ID: be2362cb41b5
Revises: 8051071264e6
Create Date: 2026-12-02 06:20:00
"""
from collections.abc import Sequence

from shared.migrations import outbox_relay_deletes, outbox_relay_marks

revision: str = "be2362cb41b5"
down_revision: str | None = "8051071264e6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    outbox_relay_deletes("notification")


def downgrade() -> None:
    outbox_relay_marks("notification")
