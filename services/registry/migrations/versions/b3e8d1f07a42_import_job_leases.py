"""import jobs: attempts, the worker holding the job, the file's hash and superseded_by (issue 16 item 7)

Revision ID: b3e8d1f07a42
Revises: 5a7c2e91d3b4
Create Date: 2026-12-05 15:05:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "b3e8d1f07a42"
down_revision: str | None = "5a7c2e91d3b4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("import_jobs", sa.Column("content_sha256", sa.String(length=64), nullable=True), schema="registry")
    op.add_column("import_jobs", sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
                  schema="registry")
    op.add_column("import_jobs", sa.Column("worker", sa.String(length=120), nullable=True), schema="registry")
    op.add_column("import_jobs", sa.Column("superseded_by", postgresql.UUID(as_uuid=True), nullable=True),
                  schema="registry")
    op.create_index("ix_import_jobs_status", "import_jobs", ["status"], schema="registry")


def downgrade() -> None:
    op.drop_index("ix_import_jobs_status", table_name="import_jobs", schema="registry")
    for column in ("superseded_by", "worker", "attempts", "content_sha256"):
        op.drop_column("import_jobs", column, schema="registry")
