"""Tables of the notification service (schema `notification`), SQLAlchemy Core on the service metadata."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    Time,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase

from shared.backbone import Backbone
from shared.db import make_metadata


class Base(DeclarativeBase):
    """Declarative base of the notification schema."""

    metadata = make_metadata("notification")

backbone = Backbone("notification", Base.metadata)
md = Base.metadata

NOW = func.now()

commissioners = Table(
    "commissioners",
    md,
    Column("id", String(64), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("mobile", String(32), nullable=False),
    Column("email", String(200)),
    Column("region", String(6), nullable=False),
    Column("level", String(10), nullable=False),
    Column("capacity", Integer, nullable=False),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=NOW),
)
Index("ix_commissioners_region_level", commissioners.c.region, commissioners.c.level)

# Enterprises as known from registry events (liaison) and recognition events (region).
enterprises = Table(
    "enterprises",
    md,
    Column("uscc", String(18), primary_key=True),
    Column("name", String(200)),
    Column("region_code", String(6), nullable=False),
    Column("liaison_name", String(100)),
    Column("liaison_mobile", String(32)),
    Column("liaison_email", String(200)),
    Column("version", Integer, nullable=False, server_default=text("0")),
    Column("deregistered", Boolean, nullable=False, server_default=text("false")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=NOW),
)

recognitions = Table(
    "recognitions",
    md,
    Column("recognition_id", String(64), primary_key=True),
    Column("uscc", String(18), nullable=False, index=True),
    Column("region_code", String(6), nullable=False),
    Column("tier", String(40), nullable=False),
    Column("level", String(20), nullable=False),
    Column("valid_from", Date),
    Column("valid_to", Date),
    Column("status", String(10), nullable=False, server_default=text("'active'")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=NOW),
)

# Tiers an enterprise was last evaluated eligible for (evaluation.completed), for policy matching.
eligibilities = Table(
    "eligibilities",
    md,
    Column("uscc", String(18), primary_key=True),
    Column("tier", String(40), primary_key=True),
    Column("year", Integer, nullable=False),
    Column("eligible", Boolean, nullable=False),
)

assignments = Table(
    "assignments",
    md,
    Column("uscc", String(18), primary_key=True),
    Column("commissioner_id", String(64), ForeignKey("commissioners.id"), index=True),
    Column("region_code", String(6), nullable=False),
    Column("target_region", String(6), nullable=False),
    Column("tier", String(40), nullable=False),
    Column("level", String(10), nullable=False),
    Column("status", String(12), nullable=False),  # assigned / unassigned
    Column("assigned_at", DateTime(timezone=True), nullable=False, server_default=NOW),
)

assignment_history = Table(
    "assignment_history",
    md,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("uscc", String(18), nullable=False, index=True),
    Column("commissioner_id", String(64)),
    Column("previous_commissioner_id", String(64)),
    Column("tier", String(40)),
    Column("level", String(10)),
    Column("reason", String(200), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, server_default=NOW),
)

# The in-app inbox: one notice per (source key, recipient). recipient = enterprise:<uscc> /
# commissioner:<id> / official:<role>:<region>.
notices = Table(
    "notices",
    md,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("dedup_key", String(200), nullable=False),
    Column("recipient", String(120), nullable=False),
    Column("uscc", String(18)),
    Column("template_code", String(60), nullable=False),
    Column("template_version", Integer, nullable=False),
    Column("title", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("urgent", Boolean, nullable=False, server_default=text("false")),
    Column("variables", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    Column("read_at", DateTime(timezone=True)),
    UniqueConstraint("dedup_key", "recipient", name="uq_notices_dedup_recipient"),
)
Index("ix_notices_recipient_id", notices.c.recipient, notices.c.id)

# Outbound sends (SMS, email), the outbox of the delivery worker. At most one per (source, recipient, channel).
deliveries = Table(
    "deliveries",
    md,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("notice_id", BigInteger, ForeignKey("notices.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("dedup_key", String(200), nullable=False),
    Column("recipient", String(120), nullable=False),
    Column("channel", String(10), nullable=False),  # sms / email
    Column("address", String(200), nullable=False),
    Column("urgent", Boolean, nullable=False, server_default=text("false")),
    # pending / sending / sent / failed / deferred
    Column("status", String(10), nullable=False, server_default=text("'pending'")),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    Column("claimed_at", DateTime(timezone=True)),
    Column("claimed_by", BigInteger),  # the claiming worker's lease key (shared.leases): taken over once it is gone
    Column("sent_at", DateTime(timezone=True)),
    Column("provider_ref", String(200)),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    UniqueConstraint("dedup_key", "recipient", "channel", name="uq_deliveries_dedup_recipient_channel"),
)
Index("ix_deliveries_due", deliveries.c.next_attempt_at, postgresql_where=deliveries.c.status.in_(
    ["pending", "deferred", "sending"]))

preferences = Table(
    "preferences",
    md,
    Column("recipient", String(120), primary_key=True),
    Column("sms", Boolean, nullable=False, server_default=text("true")),
    Column("email", Boolean, nullable=False, server_default=text("true")),
    Column("quiet_start", Time),
    Column("quiet_end", Time),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    # gap advice (精准服务) goes to the inbox; by SMS only when the enterprise opted in
    Column("gap_advice_sms", Boolean, nullable=False, server_default=text("false")),
)

# Scheduled reminders (validity expiring 90/30 days, data-update deadline), claimed with SKIP LOCKED.
reminders = Table(
    "reminders",
    md,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("key", String(200), nullable=False, unique=True),
    Column("kind", String(40), nullable=False),
    Column("uscc", String(18), nullable=False, index=True),
    Column("recognition_id", String(64)),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("status", String(10), nullable=False, server_default=text("'pending'")),  # pending/done/cancelled
    Column("payload", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("done_at", DateTime(timezone=True)),
)
Index("ix_reminders_due", reminders.c.due_at, postgresql_where=reminders.c.status == "pending")

policies = Table(
    "policies",
    md,
    Column("policy_id", String(64), primary_key=True),
    Column("name", String(300), nullable=False),
    Column("jurisdiction", String(6), nullable=False),
    Column("kind", String(60)),
    Column("tiers", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("effective_from", Date),
    Column("effective_to", Date),
    Column("summary", Text),
)

policy_pushes = Table(
    "policy_pushes",
    md,
    Column("uscc", String(18), primary_key=True),
    Column("policy_id", String(64), primary_key=True),
    Column("reason", String(500), nullable=False),
    Column("notice_id", BigInteger),
    Column("pushed_at", DateTime(timezone=True), nullable=False, server_default=NOW),
)

# One-time rewards per tier from finance's policy.published (rewards[]), to tell an enterprise near a tier
# what that tier would bring under the policies of its county, city and province. level NULL = any level.
policy_rewards = Table(
    "policy_rewards",
    md,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("policy_id", String(64), nullable=False, index=True),
    Column("jurisdiction", String(6), nullable=False),
    Column("tier", String(40), nullable=False),
    Column("level", String(20)),
    Column("amount", Numeric(18, 2), nullable=False),
    Column("effective_from", Date),
    Column("effective_to", Date),
)
Index("ix_policy_rewards_jurisdiction_tier", policy_rewards.c.jurisdiction, policy_rewards.c.tier)

# 精准服务: gap advice sent to an enterprise near a tier, at most once per (enterprise, tier, year).
gap_advices = Table(
    "gap_advices",
    md,
    Column("uscc", String(18), primary_key=True),
    Column("tier", String(40), primary_key=True),
    Column("year", Integer, primary_key=True),
    Column("region_code", String(6), nullable=False),
    Column("level", String(20)),
    Column("ruleset_id", String(80)),
    Column("unmet", Integer, nullable=False),
    Column("yuan_gap", Numeric(18, 2)),
    Column("reward", Numeric(18, 2)),
    Column("advice", Text, nullable=False),
    Column("gaps", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("notice_id", BigInteger),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=NOW),
)
