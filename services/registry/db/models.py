"""ORM models of the registry service (schema `registry`)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.backbone import Backbone
from shared.db import make_metadata


def table_of(model: type[DeclarativeBase]) -> Table:
    """The Core table of a model (typed), for batched executemany inserts."""
    return cast(Table, model.__table__)


class Base(DeclarativeBase):
    """Declarative base of the registry schema."""

    metadata = make_metadata("registry")


backbone = Backbone("registry", Base.metadata)


class Region(Base):
    """GB/T 2260 snapshot (with retired codes) plus programme zones (is_zone, project codes)."""

    __tablename__ = "regions"
    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    name: Mapped[str] = mapped_column(String(60))
    parent_code: Mapped[str | None] = mapped_column(String(6))
    level: Mapped[str] = mapped_column(String(10))
    is_zone: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    status: Mapped[str] = mapped_column(String(10), server_default="active")
    retired_on: Mapped[date | None] = mapped_column(Date)
    successor_code: Mapped[str | None] = mapped_column(String(6))
    note: Mapped[str | None] = mapped_column(Text)


class Enterprise(Base):
    __tablename__ = "enterprises"
    uscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    region_code: Mapped[str] = mapped_column(String(6), index=True)
    industry_code: Mapped[str] = mapped_column(String(4), index=True)
    is_manufacturing: Mapped[bool] = mapped_column(Boolean)
    founded_on: Mapped[date | None] = mapped_column(Date)
    scale: Mapped[str | None] = mapped_column(String(10))
    scale_source: Mapped[str | None] = mapped_column(String(10))  # given / derived
    focus: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    liaison: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # 法定代表人, from the market-supervision feed (zjtx.agency.enterprise.representative_changed.v1)
    legal_representative: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(15), server_default="active")
    deregistered_reason: Mapped[str | None] = mapped_column(Text)
    deregistered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class IndicatorRevision(Base):
    """Every revision of an enterprise's annual indicators, with who/when/source."""

    __tablename__ = "indicator_revisions"
    __table_args__ = (UniqueConstraint("uscc", "year", "revision"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    uscc: Mapped[str] = mapped_column(String(18))
    year: Mapped[int] = mapped_column(Integer)
    revision: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(120))
    actor: Mapped[str] = mapped_column(String(200))
    values: Mapped[dict[str, Any]] = mapped_column(JSONB)
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Recognition(Base):
    """Read model of the evaluation service's recognitions (current tiers)."""

    __tablename__ = "recognitions"
    recognition_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    region_code: Mapped[str | None] = mapped_column(String(6))
    tier: Mapped[str] = mapped_column(String(40))
    level: Mapped[str] = mapped_column(String(20))
    ruleset_id: Mapped[str | None] = mapped_column(String(60))
    batch_year: Mapped[int | None] = mapped_column(Integer)
    announced_on: Mapped[date | None] = mapped_column(Date)
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10))  # valid / expired / revoked
    ended_on: Mapped[date | None] = mapped_column(Date)
    ground: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CommissionerAssignment(Base):
    """Read model of the notification service's current commissioner per enterprise (服务专员).

    One row per enterprise; ``commissioner_id`` is None while nobody serves it (commissioner.unavailable).
    ``event_time``/``event_id`` order the events, so a stale or reordered one never replaces a newer one.
    """

    __tablename__ = "commissioner_assignments"
    uscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    commissioner_id: Mapped[str | None] = mapped_column(String(64), index=True)
    commissioner_name: Mapped[str | None] = mapped_column(Text)
    region_code: Mapped[str | None] = mapped_column(String(6))
    tier: Mapped[str | None] = mapped_column(String(40))
    level: Mapped[str | None] = mapped_column(String(10))
    reason: Mapped[str | None] = mapped_column(Text)
    event_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    event_id: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Pool(Base):
    __tablename__ = "pools"
    __table_args__ = (UniqueConstraint("level", "region_code", "track"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    level: Mapped[str] = mapped_column(String(10))
    region_code: Mapped[str] = mapped_column(String(6))
    track: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(120))


class PoolMembership(Base):
    __tablename__ = "pool_memberships"
    __table_args__ = (
        Index(
            "uq_pool_memberships_active",
            "pool_id",
            "uscc",
            unique=True,
            postgresql_where=text("exited_on IS NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    pool_id: Mapped[int] = mapped_column(Integer, index=True)
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    year: Mapped[int] = mapped_column(Integer)
    basis: Mapped[str] = mapped_column(String(20))  # nomination / rule_result
    reason: Mapped[str | None] = mapped_column(Text)
    entered_on: Mapped[date] = mapped_column(Date)
    entered_by: Mapped[str] = mapped_column(String(200))
    exited_on: Mapped[date | None] = mapped_column(Date)
    exit_reason: Mapped[str | None] = mapped_column(Text)
    exited_by: Mapped[str | None] = mapped_column(String(200))


class Target(Base):
    """A target per region, track (tier id), measure (recognised / pool), level and year."""

    __tablename__ = "targets"
    __table_args__ = (UniqueConstraint("region_code", "track", "measure", "level", "year"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    region_code: Mapped[str] = mapped_column(String(6))
    track: Mapped[str] = mapped_column(String(40))
    measure: Mapped[str] = mapped_column(String(12))
    level: Mapped[str] = mapped_column(String(10))  # level of the title or the pool; "any" for all levels
    year: Mapped[int] = mapped_column(Integer)
    target: Mapped[int] = mapped_column(Integer)
    source: Mapped[str | None] = mapped_column(Text)


class ImportJob(Base):
    """An import job: ``queued`` → ``running`` → ``done`` / ``failed``; an interrupted one (its worker gone: the
    job's lease, a session advisory lock, is free) is ``queued`` again on the next start, or ``superseded`` when
    its uploader resubmitted the same file after it (``superseded_by``)."""

    __tablename__ = "import_jobs"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(20))
    mode: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(12), server_default="queued", index=True)
    content_sha256: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    worker: Mapped[str | None] = mapped_column(String(120))
    superseded_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    filename: Mapped[str | None] = mapped_column(String(300))
    content: Mapped[bytes | None] = mapped_column(LargeBinary)
    principal: Mapped[dict[str, Any]] = mapped_column(JSONB)
    rows_total: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    rows_done: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    rows_imported: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
