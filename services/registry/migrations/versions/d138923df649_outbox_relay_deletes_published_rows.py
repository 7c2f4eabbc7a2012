"""outbox: the relay deletes the rows it published (no published_at, no partial index of pending rows)

Revision ID: d138923df649
Revises: 87ce4a971acf
Create Date: 2026-12-02 06:20:00
"""
from collections.abc import Sequence

from shared.migrations import outbox_relay_deletes, outbox_relay_marks

revision: str = "d138923df649"
down_revision: str | None = "87ce4a971acf"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    outbox_relay_deletes("registry")


def downgrade() -> None:
    outbox_relay_marks("registry")
