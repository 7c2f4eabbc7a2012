"""monitor: backbone tables, the month-partitioned event archive and the reporting read models

Revision ID: a1c0f0e5d001
Revises:
Create Date: 2026-12-05 14:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "a1c0f0e5d001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "monitor"


def upgrade() -> None:
    # backbone (shared.backbone): outbox (unused: monitor publishes nothing), inbox, audit log, idempotency keys
    op.create_table(
        "outbox",
        sa.Column("seq", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=200), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_outbox")),
        schema=S,
    )
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.String(length=100), nullable=False),
        sa.Column("event_id", sa.String(length=100), nullable=False),
        sa.Column("event_type", sa.String(length=200), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id", name="pk_inbox"),
        schema=S,
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=40), nullable=False),
        sa.Column("region", sa.String(length=12), nullable=True),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("object_type", sa.String(length=60), nullable=False),
        sa.Column("object_id", sa.String(length=100), nullable=False),
        sa.Column("before", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("after", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("event_id", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
        schema=S,
    )
    op.create_index("ix_audit_log_object", "audit_log", ["object_type", "object_id"], unique=False, schema=S)
    op.create_table(
        "idempotency_keys",
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("actor", "key", name="pk_idempotency_keys"),
        schema=S,
    )

    # the archive: partitioned by month on the event time; partitions live in monitor_archive (created on demand)
    op.execute("CREATE SCHEMA IF NOT EXISTS monitor_archive")
    op.execute("CREATE SEQUENCE monitor.events_cursor_seq AS bigint")
    op.execute(
        """
        CREATE TABLE monitor.events (
            cursor bigint NOT NULL DEFAULT nextval('monitor.events_cursor_seq'),
            event_id varchar(100) NOT NULL,
            type varchar(200) NOT NULL,
            source varchar(200) NOT NULL,
            subject varchar(64) NOT NULL,
            region_code varchar(6),
            time timestamptz NOT NULL,
            correlation_id varchar(100),
            payload jsonb NOT NULL,
            archived_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_events PRIMARY KEY (event_id, time)
        ) PARTITION BY RANGE (time)
        """
    )
    op.execute("ALTER SEQUENCE monitor.events_cursor_seq OWNED BY monitor.events.cursor")
    op.create_index("ix_events_cursor", "events", ["cursor"], schema=S)
    op.create_index("ix_events_region_code_cursor", "events", ["region_code", "cursor"], schema=S)
    op.create_index("ix_events_subject_cursor", "events", ["subject", "cursor"], schema=S)

    op.create_table(
        "enterprises",
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("region_code", sa.String(length=6), nullable=True),
        sa.Column("status", sa.String(length=15), server_default="active", nullable=False),
        sa.PrimaryKeyConstraint("uscc", name=op.f("pk_enterprises")),
        schema=S,
    )
    op.create_index(op.f("ix_enterprises_region_code"), "enterprises", ["region_code"], schema=S)
    op.create_table(
        "pool_members",
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("pool_region", sa.String(length=6), nullable=False),
        sa.Column("track", sa.String(length=40), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("uscc", "level", "pool_region", "track", "year", name="pk_pool_members"),
        schema=S,
    )
    op.create_index(op.f("ix_pool_members_region_code"), "pool_members", ["region_code"], schema=S)
    op.create_table(
        "applications",
        sa.Column("application_id", sa.String(length=64), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("tier", sa.String(length=40), nullable=False),
        sa.Column("level", sa.String(length=10), nullable=True),
        sa.Column("batch_year", sa.Integer(), nullable=True),
        sa.Column("stage", sa.String(length=12), nullable=False),
        sa.PrimaryKeyConstraint("application_id", name=op.f("pk_applications")),
        schema=S,
    )
    op.create_index(op.f("ix_applications_uscc"), "applications", ["uscc"], schema=S)
    op.create_index(op.f("ix_applications_region_code"), "applications", ["region_code"], schema=S)
    op.create_table(
        "recognitions",
        sa.Column("recognition_id", sa.String(length=64), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("tier", sa.String(length=40), nullable=False),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("batch_year", sa.Integer(), nullable=True),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("ended_on", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("recognition_id", name=op.f("pk_recognitions")),
        schema=S,
    )
    op.create_index(op.f("ix_recognitions_uscc"), "recognitions", ["uscc"], schema=S)
    op.create_index(op.f("ix_recognitions_region_code"), "recognitions", ["region_code"], schema=S)
    op.create_table(
        "entitlements",
        sa.Column("entitlement_id", sa.String(length=64), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("jurisdiction", sa.String(length=6), nullable=False),
        sa.Column("policy_name", sa.String(length=200), nullable=True),
        sa.Column("kind", sa.String(length=40), nullable=True),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("paid_amount", sa.Numeric(precision=16, scale=2), server_default=sa.text("0"), nullable=False),
        sa.Column("recovered_amount", sa.Numeric(precision=16, scale=2), server_default=sa.text("0"),
                  nullable=False),
        sa.PrimaryKeyConstraint("entitlement_id", name=op.f("pk_entitlements")),
        schema=S,
    )
    op.create_index(op.f("ix_entitlements_uscc"), "entitlements", ["uscc"], schema=S)
    op.create_index(op.f("ix_entitlements_region_code"), "entitlements", ["region_code"], schema=S)
    op.create_table(
        "budgets",
        sa.Column("jurisdiction", sa.String(length=6), nullable=False),
        sa.Column("fund", sa.String(length=100), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.PrimaryKeyConstraint("jurisdiction", "fund", "year", name="pk_budgets"),
        schema=S,
    )
    op.create_table(
        "assignments",
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("commissioner_id", sa.String(length=64), nullable=False),
        sa.Column("commissioner_name", sa.String(length=100), nullable=True),
        sa.Column("region_code", sa.String(length=6), nullable=True),
        sa.PrimaryKeyConstraint("uscc", name=op.f("pk_assignments")),
        schema=S,
    )
    op.create_index(op.f("ix_assignments_commissioner_id"), "assignments", ["commissioner_id"], schema=S)
    op.create_table(
        "evaluations",
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("tier", sa.String(length=40), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=True),
        sa.Column("ruleset_id", sa.String(length=200), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=True),
        sa.Column("eligible", sa.Boolean(), nullable=False),
        sa.Column("score", sa.Numeric(precision=7, scale=2), nullable=True),
        sa.Column("unmet", sa.Integer(), nullable=True),
        sa.Column("yuan_gap", sa.Numeric(precision=16, scale=2), nullable=True),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("uscc", "tier", name="pk_evaluations"),
        schema=S,
    )
    op.create_index(op.f("ix_evaluations_region_code"), "evaluations", ["region_code"], schema=S)
    op.create_table(
        "targets",
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("track", sa.String(length=40), nullable=False),
        sa.Column("measure", sa.String(length=12), nullable=False),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("target", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("region_code", "track", "measure", "level", "year", name="pk_targets"),
        schema=S,
    )


def downgrade() -> None:
    for table in ("targets", "evaluations", "assignments", "budgets", "entitlements", "recognitions",
                  "applications", "pool_members", "enterprises"):
        op.drop_table(table, schema=S)
    op.execute("DROP TABLE monitor.events")  # and its partitions
    op.execute("DROP SCHEMA IF EXISTS monitor_archive CASCADE")
    for table in ("idempotency_keys", "audit_log", "inbox", "outbox"):
        op.drop_table(table, schema=S)
