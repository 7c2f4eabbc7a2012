"""Budgets: a change (下达/追加) is requested by one official or the admin and applied only when a second
official of the jurisdiction approves it (maker-checker); approval of an entitlement reserves against it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from services.finance.app import funds
from services.finance.db import budgets as repo
from services.finance.db.models import BudgetChangeRow, BudgetRow, backbone
from services.finance.domain.money import MAX_AMOUNT, ZERO, fmt, q
from services.finance.events import contracts as ev
from shared.audit import record_audit
from shared.auth import OFFICIALS, Principal
from shared.events.outbox import emit
from shared.problems import Problem, not_found


async def listing(
    session: AsyncSession, principal: Principal, *, jurisdiction: str | None, fund: str | None, year: int | None
) -> list[BudgetRow]:
    rows = await repo.listing(session, jurisdiction=jurisdiction, fund=fund, year=year)
    return [b for b in rows if principal.covers_region(b.jurisdiction)]


def check_fund(jurisdiction: str, fund: str) -> None:
    allowed = funds.allowed(jurisdiction)
    if fund not in allowed:
        names = "、".join(allowed) or "(无)"
        raise Problem(
            422,
            f"资金渠道 {fund} 不在 {jurisdiction} 的资金渠道目录中,可选:{names}",
            errors=[{"field": "fund", "message": f"可选值:{names}"}],
            allowed=list(allowed),
        )


async def _check_total(session: AsyncSession, jurisdiction: str, fund: str, year: int, amount: Decimal) -> None:
    """A total beyond the NUMERIC(16,2) column answers 422 on ``amount`` instead of a database overflow."""
    row = await repo.find(session, jurisdiction, fund, year)
    total = (row.total if row is not None else ZERO) + q(amount)
    if total > MAX_AMOUNT:
        raise Problem(
            422,
            f"预算总额将超过上限 {fmt(MAX_AMOUNT)} 元 (amount out of range)",
            errors=[{"field": "amount", "message": f"追加后总额不能超过 {fmt(MAX_AMOUNT)} 元"}],
        )


async def request_change(
    session: AsyncSession, principal: Principal, jurisdiction: str, fund: str, year: int, amount: Decimal
) -> BudgetChangeRow:
    """A pending change; nothing is allocated until a second official approves it."""
    check_fund(jurisdiction, fund)
    await _check_total(session, jurisdiction, fund, year, amount)
    row = BudgetChangeRow(
        id=uuid.uuid4(),
        jurisdiction=jurisdiction,
        fund=fund,
        year=year,
        amount=q(amount),
        status="pending",
        requested_by=principal.sub,
        requested_at=datetime.now(UTC),
    )
    session.add(row)
    await session.flush()
    await record_audit(
        session,
        backbone,
        principal,
        "budget.change_requested",
        "budget_change",
        str(row.id),
        after={"jurisdiction": jurisdiction, "fund": fund, "year": year, "amount": fmt(amount), "status": "pending"},
    )
    return row


async def _locked_change_for_checker(
    session: AsyncSession, principal: Principal, change_id: uuid.UUID
) -> BudgetChangeRow:
    change = await repo.get_change(session, change_id, for_update=True)
    if change is None or not principal.covers_region(change.jurisdiction):
        raise not_found("预算变更")
    if principal.role not in OFFICIALS or principal.region != change.jurisdiction:
        raise Problem(
            403, f"预算变更须由 {change.jurisdiction} 辖区的工作人员复核 (only officials of the jurisdiction)"
        )
    if change.status != "pending":
        raise Problem(409, f"该预算变更状态为 {change.status},不能再复核")
    return change


async def approve_change(session: AsyncSession, principal: Principal, change_id: uuid.UUID) -> BudgetChangeRow:
    change = await _locked_change_for_checker(session, principal, change_id)
    if change.requested_by == principal.sub:
        raise Problem(403, "复核人不能是申请人:预算变更须由另一名工作人员复核 (maker-checker)")
    await _check_total(session, change.jurisdiction, change.fund, change.year, change.amount)
    row = await repo.allocate(
        session, change.jurisdiction, change.fund, change.year, change.amount, memo=f"预算下达 by {change.requested_by}"
    )
    change.status, change.decided_by, change.decided_at = "approved", principal.sub, datetime.now(UTC)
    await emit_budget_changed(session, change, row)
    await record_audit(
        session,
        backbone,
        principal,
        "budget.allocated",
        "budget",
        str(row.id),
        after={"amount": fmt(change.amount), "total": fmt(row.total), "change_id": str(change.id)},
    )
    return change


async def emit_budget_changed(session: AsyncSession, change: BudgetChangeRow, row: BudgetRow) -> None:
    """``budget.changed`` in the caller's transaction: the approved change and the budget after it."""
    await emit(
        session,
        backbone,
        ev.BUDGET_CHANGED,
        row.jurisdiction,
        ev.BudgetChanged(
            change_id=str(change.id),
            jurisdiction=row.jurisdiction,
            fund=row.fund,
            year=row.year,
            amount=fmt(change.amount),
            total=fmt(row.total),
            reserved=fmt(row.reserved),
            spent=fmt(row.spent),
            available=fmt(row.total - row.reserved - row.spent),
            requested_by=change.requested_by,
            approved_by=change.decided_by or "",
        ),
        regioncode=row.jurisdiction,
    )


async def allocate_seeded(
    session: AsyncSession, jurisdiction: str, fund: str, year: int, amount: Decimal, actor: str
) -> BudgetRow:
    """A configured budget (demo data, a migration of last year's budgets): recorded as a change requested
    and approved by ``actor``, allocated and announced like one approved through the API."""
    now = datetime.now(UTC)
    change = BudgetChangeRow(
        id=uuid.uuid4(),
        jurisdiction=jurisdiction,
        fund=fund,
        year=year,
        amount=q(amount),
        status="approved",
        requested_by=actor,
        requested_at=now,
        decided_by=actor,
        decided_at=now,
    )
    session.add(change)
    row = await repo.allocate(session, jurisdiction, fund, year, amount, memo=f"预算下达 by {actor}")
    await emit_budget_changed(session, change, row)
    return row


async def reject_change(
    session: AsyncSession, principal: Principal, change_id: uuid.UUID, reason: str
) -> BudgetChangeRow:
    change = await _locked_change_for_checker(session, principal, change_id)
    change.status, change.decided_by, change.decided_at = "rejected", principal.sub, datetime.now(UTC)
    change.reason = reason
    await record_audit(
        session,
        backbone,
        principal,
        "budget.change_rejected",
        "budget_change",
        str(change.id),
        after={"reason": reason},
    )
    return change


async def changes(
    session: AsyncSession, principal: Principal, *, jurisdiction: str | None, status: str | None
) -> list[BudgetChangeRow]:
    rows = await repo.changes(session, jurisdiction=jurisdiction, status=status)
    return [c for c in rows if principal.covers_region(c.jurisdiction)]


async def budget_of(session: AsyncSession, change: BudgetChangeRow) -> BudgetRow | None:
    return await repo.find(session, change.jurisdiction, change.fund, change.year)


async def reserve(
    session: AsyncSession, jurisdiction: str, fund: str, year: int, amount: Decimal, entitlement_id: uuid.UUID
) -> None:
    """Reserve on approval, or 409 naming what remains."""
    amount = q(amount)
    if await repo.try_reserve(session, jurisdiction, fund, year, amount, entitlement_id):
        return
    row = await repo.find(session, jurisdiction, fund, year)
    if row is None:
        raise Problem(409, f"{jurisdiction} 的 {fund} 资金 {year} 年度尚未下达预算 (no budget)", remaining="0.00")
    remaining = q(row.total - row.reserved - row.spent)
    raise Problem(
        409,
        f"预算不足:{jurisdiction} {fund} {year} 年度剩余 {remaining} 元,本次需 {amount} 元 (budget would be overdrawn)",
        remaining=str(remaining),
        requested=str(amount),
    )
