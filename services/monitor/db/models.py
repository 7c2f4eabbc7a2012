"""Tables of the monitor service (schema ``monitor``): the event archive and the reporting read models.

The archive ``events`` is range-partitioned by month on the event time; its partitions are created on demand in
the schema ``monitor_archive`` (``db/archive.py``), outside the schema alembic compares with these models.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Index,
    Integer,
    Numeric,
    PrimaryKeyConstraint,
    String,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.backbone import Backbone
from shared.db import make_metadata

PARTITION_SCHEMA = "monitor_archive"


class Base(DeclarativeBase):
    metadata = make_metadata("monitor")


backbone = Backbone("monitor", Base.metadata)


class ArchivedEvent(Base):
    """Every event of every topic, once (the consumer's inbox), append-only. ``cursor`` orders the feed."""

    __tablename__ = "events"
    __table_args__ = (
        PrimaryKeyConstraint("event_id", "time", name="pk_events"),
        Index("ix_events_cursor", "cursor"),
        Index("ix_events_region_code_cursor", "region_code", "cursor"),
        Index("ix_events_subject_cursor", "subject", "cursor"),
        {"postgresql_partition_by": "RANGE (time)"},
    )
    # a bigserial: one sequence for the whole table, so the cursor grows across partitions
    cursor: Mapped[int] = mapped_column(BigInteger, server_default=text("nextval('monitor.events_cursor_seq')"))
    event_id: Mapped[str] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(64))
    region_code: Mapped[str | None] = mapped_column(String(6))
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    correlation_id: Mapped[str | None] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    archived_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Enterprise(Base):
    __tablename__ = "enterprises"
    uscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    region_code: Mapped[str | None] = mapped_column(String(6), index=True)
    status: Mapped[str] = mapped_column(String(15), server_default="active")


class PoolMember(Base):
    __tablename__ = "pool_members"
    __table_args__ = (PrimaryKeyConstraint("uscc", "level", "pool_region", "track", "year", name="pk_pool_members"),)
    uscc: Mapped[str] = mapped_column(String(18))
    level: Mapped[str] = mapped_column(String(10))
    pool_region: Mapped[str] = mapped_column(String(6))
    track: Mapped[str] = mapped_column(String(40))
    year: Mapped[int] = mapped_column(Integer)
    region_code: Mapped[str] = mapped_column(String(6), index=True)
    active: Mapped[bool] = mapped_column(Boolean)


class Application(Base):
    __tablename__ = "applications"
    application_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    region_code: Mapped[str] = mapped_column(String(6), index=True)
    tier: Mapped[str] = mapped_column(String(40))
    level: Mapped[str | None] = mapped_column(String(10))
    batch_year: Mapped[int | None] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(String(12))


class Recognition(Base):
    __tablename__ = "recognitions"
    recognition_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    region_code: Mapped[str] = mapped_column(String(6), index=True)
    tier: Mapped[str] = mapped_column(String(40))
    level: Mapped[str] = mapped_column(String(10))
    batch_year: Mapped[int | None] = mapped_column(Integer)
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10))  # valid / expired / revoked
    ended_on: Mapped[date | None] = mapped_column(Date)


class Entitlement(Base):
    __tablename__ = "entitlements"
    entitlement_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    region_code: Mapped[str] = mapped_column(String(6), index=True)
    jurisdiction: Mapped[str] = mapped_column(String(6))
    policy_name: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[str | None] = mapped_column(String(40))
    year: Mapped[int] = mapped_column(Integer)
    amount: Mapped[Decimal] = mapped_column(Numeric(16, 2))
    status: Mapped[str] = mapped_column(String(10))  # created / approved / paid / recovered
    paid_amount: Mapped[Decimal] = mapped_column(Numeric(16, 2), server_default=text("0"))
    recovered_amount: Mapped[Decimal] = mapped_column(Numeric(16, 2), server_default=text("0"))


class Budget(Base):
    __tablename__ = "budgets"
    __table_args__ = (PrimaryKeyConstraint("jurisdiction", "fund", "year", name="pk_budgets"),)
    jurisdiction: Mapped[str] = mapped_column(String(6))
    fund: Mapped[str] = mapped_column(String(100))
    year: Mapped[int] = mapped_column(Integer)
    amount: Mapped[Decimal] = mapped_column(Numeric(16, 2))


class Assignment(Base):
    __tablename__ = "assignments"
    uscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    commissioner_id: Mapped[str] = mapped_column(String(64), index=True)
    commissioner_name: Mapped[str | None] = mapped_column(String(100))
    region_code: Mapped[str | None] = mapped_column(String(6))


class Evaluation(Base):
    """The latest evaluation result per enterprise and tier (from evaluation.completed)."""

    __tablename__ = "evaluations"
    __table_args__ = (PrimaryKeyConstraint("uscc", "tier", name="pk_evaluations"),)
    uscc: Mapped[str] = mapped_column(String(18))
    tier: Mapped[str] = mapped_column(String(40))
    region_code: Mapped[str | None] = mapped_column(String(6), index=True)
    ruleset_id: Mapped[str] = mapped_column(String(200))
    year: Mapped[int] = mapped_column(Integer)
    as_of: Mapped[date | None] = mapped_column(Date)
    eligible: Mapped[bool] = mapped_column(Boolean)
    score: Mapped[Decimal | None] = mapped_column(Numeric(7, 2))
    unmet: Mapped[int | None] = mapped_column(Integer)
    yuan_gap: Mapped[Decimal | None] = mapped_column(Numeric(16, 2))
    event_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Target(Base):
    __tablename__ = "targets"
    __table_args__ = (PrimaryKeyConstraint("region_code", "track", "measure", "level", "year", name="pk_targets"),)
    region_code: Mapped[str] = mapped_column(String(6))
    track: Mapped[str] = mapped_column(String(40))
    measure: Mapped[str] = mapped_column(String(12))
    level: Mapped[str] = mapped_column(String(10))
    year: Mapped[int] = mapped_column(Integer)
    target: Mapped[int] = mapped_column(Integer)


class NoticeSent(Base):
    """Each notice notification put in an inbox (from notice.sent; no contact data), counted by region, kind, tier,
    year and the commissioner it went to."""

    __tablename__ = "notices"
    notice_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    uscc: Mapped[str | None] = mapped_column(String(18))
    region_code: Mapped[str | None] = mapped_column(String(6), index=True)
    kind: Mapped[str] = mapped_column(String(60))
    kind_name: Mapped[str | None] = mapped_column(String(100))
    recipient_kind: Mapped[str] = mapped_column(String(20))
    commissioner_id: Mapped[str | None] = mapped_column(String(64))
    tier: Mapped[str | None] = mapped_column(String(40))
    channels: Mapped[int] = mapped_column(Integer, server_default=text("0"))  # SMS/e-mail sends queued
    year: Mapped[int] = mapped_column(Integer)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
