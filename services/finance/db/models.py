"""ORM models of the finance service (schema `finance`)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
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
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.backbone import Backbone
from shared.db import make_metadata


class Base(DeclarativeBase):
    """Declarative base of the finance schema."""

    metadata = make_metadata("finance")


backbone = Backbone("finance", Base.metadata)

MONEY = Numeric(16, 2)


class PolicyRow(Base):
    """A subsidy policy of one jurisdiction; the rule parameters live in ``spec`` (see domain.policy)."""

    __tablename__ = "policies"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    jurisdiction: Mapped[str] = mapped_column(String(6), index=True)
    fund: Mapped[str] = mapped_column(String(60))
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), server_default="draft")
    effective_from: Mapped[date] = mapped_column(Date)
    effective_to: Mapped[date | None] = mapped_column(Date)
    document: Mapped[str] = mapped_column(Text, server_default="")
    spec: Mapped[dict[str, Any]] = mapped_column(JSONB)
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    created_by: Mapped[str] = mapped_column(String(200))
    # The last official who changed the draft: neither they nor the creator may publish it (maker-checker).
    updated_by: Mapped[str | None] = mapped_column(String(200))
    published_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (CheckConstraint("status IN ('draft','published','retired')", name="status"),)


class BudgetRow(Base):
    __tablename__ = "budgets"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    jurisdiction: Mapped[str] = mapped_column(String(6))
    fund: Mapped[str] = mapped_column(String(60))
    year: Mapped[int] = mapped_column(Integer)
    total: Mapped[Decimal] = mapped_column(MONEY, server_default="0")
    reserved: Mapped[Decimal] = mapped_column(MONEY, server_default="0")
    spent: Mapped[Decimal] = mapped_column(MONEY, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    __table_args__ = (
        UniqueConstraint("jurisdiction", "fund", "year"),
        CheckConstraint("reserved >= 0 AND spent >= 0 AND reserved + spent <= total", name="no_overdraw"),
    )


class BudgetChangeRow(Base):
    """A requested budget change (下达/追加): pending until a second official of the jurisdiction approves it."""

    __tablename__ = "budget_changes"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    jurisdiction: Mapped[str] = mapped_column(String(6))
    fund: Mapped[str] = mapped_column(String(60))
    year: Mapped[int] = mapped_column(Integer)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    status: Mapped[str] = mapped_column(String(20), server_default="pending")
    requested_by: Mapped[str] = mapped_column(String(200))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (
        Index("ix_budget_changes_scope", "jurisdiction", "status"),
        CheckConstraint("status IN ('pending','approved','rejected')", name="status"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )


class EntitlementRow(Base):
    __tablename__ = "entitlements"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    region_code: Mapped[str] = mapped_column(String(6))
    jurisdiction: Mapped[str] = mapped_column(String(6), index=True)
    policy_id: Mapped[str] = mapped_column(String(64), ForeignKey("policies.id"))
    policy_name: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(20))
    fund: Mapped[str] = mapped_column(String(60))
    subject: Mapped[str] = mapped_column(String(200))
    year: Mapped[int] = mapped_column(Integer)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    reference: Mapped[Decimal] = mapped_column(MONEY, server_default="0")
    status: Mapped[str] = mapped_column(String(20))
    explanation: Mapped[dict[str, Any]] = mapped_column(JSONB)
    figures: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    recognition_id: Mapped[str | None] = mapped_column(String(100), index=True)
    source: Mapped[str] = mapped_column(String(20))
    created_by: Mapped[str] = mapped_column(String(200))
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str | None] = mapped_column(Text)
    # Set when the title is revoked while the payment is in flight: the payment, once confirmed, is recovered.
    revocation_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    __table_args__ = (
        UniqueConstraint("uscc", "policy_id", "subject", "year", name="uq_entitlements_business_key"),
        CheckConstraint(
            "status IN ('pending','nothing_due','approved','paid','rejected','cancelled','recovering','recovered')",
            name="status",
        ),
        CheckConstraint("amount >= 0", name="amount_nonneg"),
    )


class DeferredRecognitionRow(Base):
    """A migrated-in title not yet rewardable (under a year of operation here): applied again on ``due_on``."""

    __tablename__ = "deferred_recognitions"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    uscc: Mapped[str] = mapped_column(String(18))
    recognition_id: Mapped[str] = mapped_column(String(100))
    region_code: Mapped[str] = mapped_column(String(6))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    due_on: Mapped[date] = mapped_column(Date, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    __table_args__ = (UniqueConstraint("recognition_id", "uscc", "region_code"),)


class DisbursementRow(Base):
    __tablename__ = "disbursements"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    entitlement_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("entitlements.id"), unique=True)
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    region_code: Mapped[str] = mapped_column(String(6))
    jurisdiction: Mapped[str] = mapped_column(String(6))
    fund: Mapped[str] = mapped_column(String(60))
    year: Mapped[int] = mapped_column(Integer)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    state: Mapped[str] = mapped_column(String(20), server_default="pending")
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # the lease key (shared.leases) of the worker that claimed it while 'sent': taken over as soon as it is gone
    claimed_by: Mapped[int | None] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(Text)
    gateway_payment_id: Mapped[str | None] = mapped_column(String(100))
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    __table_args__ = (
        CheckConstraint("state IN ('pending','sent','paid','failed','cancelled')", name="state"),
        Index("ix_disbursements_due", "next_attempt_at", postgresql_where=text("state IN ('pending','sent')")),
    )


class LedgerLine(Base):
    """Immutable (a trigger refuses UPDATE/DELETE); one movement = two lines with the same ``txn_id``."""

    __tablename__ = "ledger_lines"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    txn_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    movement: Mapped[str] = mapped_column(String(20))
    jurisdiction: Mapped[str] = mapped_column(String(6))
    fund: Mapped[str] = mapped_column(String(60))
    year: Mapped[int] = mapped_column(Integer)
    account: Mapped[str] = mapped_column(String(20))
    debit: Mapped[Decimal] = mapped_column(MONEY, server_default="0")
    credit: Mapped[Decimal] = mapped_column(MONEY, server_default="0")
    entitlement_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    memo: Mapped[str] = mapped_column(Text, server_default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    __table_args__ = (
        Index("ix_ledger_lines_scope", "jurisdiction", "fund", "year"),
        # Each movement happens at most once per entitlement: paying twice is impossible by construction.
        Index(
            "uq_ledger_lines_once",
            "entitlement_id",
            "movement",
            "account",
            unique=True,
            postgresql_where=text("entitlement_id IS NOT NULL"),
        ),
        CheckConstraint("debit >= 0 AND credit >= 0 AND (debit = 0) <> (credit = 0)", name="one_side"),
    )


class RecoveryRow(Base):
    __tablename__ = "recoveries"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    entitlement_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("entitlements.id"), unique=True)
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    region_code: Mapped[str] = mapped_column(String(6))
    jurisdiction: Mapped[str] = mapped_column(String(6))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), server_default="open")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    repaid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (CheckConstraint("status IN ('open','repaid')", name="status"),)


class ReconciliationRow(Base):
    __tablename__ = "reconciliations"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    on_date: Mapped[date] = mapped_column(Date)
    jurisdiction: Mapped[str] = mapped_column(String(6))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    matched: Mapped[int] = mapped_column(Integer)
    mismatches: Mapped[list[Any]] = mapped_column(JSONB)
