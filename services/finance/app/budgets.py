"""Budgets: allocation (下达) and reservation against the available amount."""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from services.finance.db import budgets as repo
from services.finance.db.models import BudgetRow, backbone
from services.finance.domain.money import fmt, q
from shared.audit import record_audit
from shared.auth import Principal
from shared.problems import Problem


async def listing(
    session: AsyncSession, principal: Principal, *, jurisdiction: str | None, fund: str | None, year: int | None
) -> list[BudgetRow]:
    rows = await repo.listing(session, jurisdiction=jurisdiction, fund=fund, year=year)
    return [b for b in rows if principal.covers_region(b.jurisdiction)]


async def allocate(
    session: AsyncSession, principal: Principal, jurisdiction: str, fund: str, year: int, amount: Decimal
) -> BudgetRow:
    row = await repo.allocate(session, jurisdiction, fund, year, amount, memo=f"预算下达 by {principal.sub}")
    await record_audit(
        session,
        backbone,
        principal,
        "budget.allocated",
        "budget",
        str(row.id),
        after={"amount": fmt(amount), "total": fmt(row.total)},
    )
    return row


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
