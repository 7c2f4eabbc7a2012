"""ORM models of the evaluation service (schema `evaluation`)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from shared.backbone import Backbone
from shared.db import make_metadata


class Base(DeclarativeBase):
    """Declarative base of the evaluation schema."""

    metadata = make_metadata("evaluation")

backbone = Backbone("evaluation", Base.metadata)


class RuleSetVersion(Base):
    """One stored version of a rule set (id + version); content never changes once stored."""

    __tablename__ = "rulesets"

    ruleset_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_version: Mapped[str] = mapped_column(String(40))
    content_hash: Mapped[str] = mapped_column(String(64))
    family: Mapped[str | None] = mapped_column(String(80))
    document_number: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(300))
    tier: Mapped[str] = mapped_column(String(40))
    level: Mapped[str] = mapped_column(String(20))
    jurisdiction: Mapped[str] = mapped_column(String(12))
    effective_from: Mapped[date | None] = mapped_column(Date)
    effective_to: Mapped[date | None] = mapped_column(Date)
    definition: Mapped[dict[str, Any]] = mapped_column(JSONB)
    cases: Mapped[Any] = mapped_column(JSONB, nullable=True)
    source_file: Mapped[str | None] = mapped_column(String(300))
    is_latest: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (UniqueConstraint("ruleset_id", "content_hash"),)


class Enterprise(Base):
    """Read model of registry's enterprises (fed by registry events only)."""

    __tablename__ = "enterprises"

    uscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    region_code: Mapped[str] = mapped_column(String(6), index=True)
    industry_code: Mapped[str | None] = mapped_column(String(10))
    is_manufacturing: Mapped[bool | None] = mapped_column(Boolean)
    founded_on: Mapped[date | None] = mapped_column(Date)
    scale: Mapped[str | None] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), server_default="active")
    version: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    deregistered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class IndicatorReport(Base):
    """Latest indicators per enterprise and reporting year (highest revision wins)."""

    __tablename__ = "indicator_reports"

    uscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    revision: Mapped[int] = mapped_column(Integer)
    region_code: Mapped[str] = mapped_column(String(6))
    indicators: Mapped[dict[str, Any]] = mapped_column(JSONB)
    reported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ExplanationTemplate(Base):
    """The static part of the explanations under one rule-set version (``domain.engine.template``: names,
    sources, thresholds, band tables, …), stored once; keyed by the SHA-256 of its content."""

    __tablename__ = "explanation_templates"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    ruleset_id: Mapped[str] = mapped_column(String(80))
    ruleset_version: Mapped[int] = mapped_column(Integer)
    template: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Evaluation(Base):
    """One evaluation result of one enterprise under one rule set version, with its explanation stored
    normalised: the varying part (``explanation_values``, the compact JSON of ``domain.engine.encode``) and a
    reference to the rule-set version's static part (``explanation_template``). ``explanation`` is the full
    explanation, rebuilt character for character (rows written before normalisation keep it in the
    ``explanation`` column, read as is)."""

    __tablename__ = "evaluations"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    uscc: Mapped[str] = mapped_column(String(18))
    region_code: Mapped[str] = mapped_column(String(6))
    year: Mapped[int] = mapped_column(Integer)
    ruleset_id: Mapped[str] = mapped_column(String(80))
    ruleset_version: Mapped[str] = mapped_column(String(40))
    tier: Mapped[str] = mapped_column(String(40))
    level: Mapped[str] = mapped_column(String(20))
    as_of: Mapped[date] = mapped_column(Date)
    eligible: Mapped[bool] = mapped_column(Boolean)
    score: Mapped[Decimal | None] = mapped_column(Numeric(7, 2))
    full_explanation: Mapped[dict[str, Any] | None] = mapped_column("explanation", JSONB, nullable=True)
    explanation_template: Mapped[str | None] = mapped_column(String(64))
    explanation_values: Mapped[str | None] = mapped_column(Text)
    trigger: Mapped[str] = mapped_column(String(40), server_default="indicators")
    job_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    template: Mapped[ExplanationTemplate | None] = relationship(
        primaryjoin="foreign(Evaluation.explanation_template) == ExplanationTemplate.id",
        viewonly=True, lazy="selectin",
    )

    __table_args__ = (Index("ix_evaluations_uscc_year_tier", "uscc", "year", "tier", "created_at"),)

    @property
    def explanation(self) -> dict[str, Any]:
        """The full explanation (``engine.evaluate(...).model_dump(mode="json")`` of the evaluation)."""
        if self.explanation_values is None:
            return self.full_explanation or {}
        from services.evaluation.db.explanations import full_explanation

        return full_explanation(self)


class Application(Base):
    """A recognition application (申报/推荐) moving through the review workflow."""

    __tablename__ = "applications"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    region_code: Mapped[str] = mapped_column(String(6))
    tier: Mapped[str] = mapped_column(String(40))
    level: Mapped[str] = mapped_column(String(20))
    batch_year: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(30))
    is_recheck: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    nominated: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    renews_recognition_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    evaluation_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    ruleset_id: Mapped[str | None] = mapped_column(String(80))
    submitted_by: Mapped[str] = mapped_column(String(200))
    publicity_starts_on: Mapped[date | None] = mapped_column(Date)
    publicity_ends_on: Mapped[date | None] = mapped_column(Date)
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    recognition_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Objection(Base):
    """An objection (异议) lodged during publicity; must be resolved before announcement."""

    __tablename__ = "objections"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    application_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    lodged_by: Mapped[str] = mapped_column(String(200))
    content: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), server_default="open")
    outcome: Mapped[str | None] = mapped_column(String(20))
    resolution: Mapped[str | None] = mapped_column(Text)
    resolved_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Recognition(Base):
    """A title held by an enterprise (认定结果) with its validity."""

    __tablename__ = "recognitions"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    region_code: Mapped[str] = mapped_column(String(6))
    tier: Mapped[str] = mapped_column(String(40))
    level: Mapped[str] = mapped_column(String(20))
    ruleset_id: Mapped[str | None] = mapped_column(String(80))
    batch_year: Mapped[int] = mapped_column(Integer)
    application_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    announced_on: Mapped[date] = mapped_column(Date)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date] = mapped_column(Date, index=True)
    status: Mapped[str] = mapped_column(String(20), server_default="active")
    renewal: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    migrated_in: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    revoked_on: Mapped[date | None] = mapped_column(Date)
    revoke_ground: Mapped[str | None] = mapped_column(String(40))
    revoke_evidence: Mapped[str | None] = mapped_column(Text)
    ban_until: Mapped[date | None] = mapped_column(Date)
    expired_on: Mapped[date | None] = mapped_column(Date)
    recheck_due_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    superseded_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ApplicationBan(Base):
    """A bar on reapplying (data fraud: 3 years)."""

    __tablename__ = "application_bans"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    ground: Mapped[str] = mapped_column(String(40))
    banned_from: Mapped[date] = mapped_column(Date)
    banned_until: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Job(Base):
    """A background job (re-evaluation) with progress."""

    __tablename__ = "jobs"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(40))
    ruleset_id: Mapped[str | None] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(20), server_default="queued")
    total: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    done: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    error: Mapped[str | None] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CreditListing(Base):
    """A credit listing of an enterprise from the 信用 feed (zjtx.agency.credit.*): 严重失信 or 经营异常, active until
    lifted. While active, the listed metric is true in every evaluation (rule sets with the condition fail it)."""

    __tablename__ = "credit_listings"
    __table_args__ = (
        Index("uq_credit_listings_active", "uscc", "listing", unique=True, postgresql_where=text("lifted_on IS NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    listing: Mapped[str] = mapped_column(String(40))
    agency: Mapped[str] = mapped_column(String(100))
    listed_on: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(Text)
    decision_no: Mapped[str | None] = mapped_column(String(100))
    lifted_on: Mapped[date | None] = mapped_column(Date)
    lift_reason: Mapped[str | None] = mapped_column(Text)
    lifted_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CommissionerAssignment(Base):
    """One row per enterprise; ``commissioner_id`` is None while nobody serves it. ``event_time``/``event_id``
    order the events, so a stale or reordered one never replaces a newer one."""

    __tablename__ = "commissioner_assignments"

    uscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    commissioner_id: Mapped[str | None] = mapped_column(String(64), index=True)
    event_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    event_id: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
