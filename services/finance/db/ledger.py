"""Ledger repository: the two lines of a movement (at most once per entitlement) and the ledger queries."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.finance.db.models import LedgerLine
from services.finance.domain.ledger import lines_for


async def post(
    session: AsyncSession,
    movement: str,
    jurisdiction: str,
    fund: str,
    year: int,
    amount: Decimal,
    *,
    entitlement_id: uuid.UUID | None = None,
    memo: str = "",
) -> bool:
    """Write the two lines of one movement. Per entitlement each movement exists once: returns False if
    it was already posted (nothing written)."""
    txn = uuid.uuid4()
    values = [
        {
            "txn_id": txn,
            "movement": movement,
            "jurisdiction": jurisdiction,
            "fund": fund,
            "year": year,
            "account": line.account,
            "debit": line.debit,
            "credit": line.credit,
            "entitlement_id": entitlement_id,
            "memo": memo,
        }
        for line in lines_for(movement, amount)
    ]
    stmt = insert(LedgerLine).values(values)
    if entitlement_id is not None:
        stmt = stmt.on_conflict_do_nothing(
            index_elements=["entitlement_id", "movement", "account"],
            index_where=text("entitlement_id IS NOT NULL"),
        )
    result = await session.execute(stmt.returning(LedgerLine.id))
    n = len(result.all())
    if n not in (0, 2):
        raise RuntimeError("账本分录不完整 (partial ledger movement)")
    return n == 2


def _conds(jurisdiction: str, fund: str | None, year: int | None) -> list[Any]:
    conds: list[Any] = [LedgerLine.jurisdiction == jurisdiction]
    if fund:
        conds.append(LedgerLine.fund == fund)
    if year:
        conds.append(LedgerLine.year == year)
    return conds


async def lines(
    session: AsyncSession, jurisdiction: str, fund: str | None, year: int | None, limit: int
) -> list[LedgerLine]:
    conds = _conds(jurisdiction, fund, year)
    return list(
        (await session.execute(select(LedgerLine).where(*conds).order_by(LedgerLine.id).limit(limit))).scalars()
    )


async def totals(
    session: AsyncSession, jurisdiction: str, fund: str | None, year: int | None
) -> list[tuple[str, str, Decimal, Decimal]]:
    """(fund, account, Σ debit, Σ credit) per fund and account."""
    rows = (
        await session.execute(
            select(LedgerLine.fund, LedgerLine.account, func.sum(LedgerLine.debit), func.sum(LedgerLine.credit))
            .where(*_conds(jurisdiction, fund, year))
            .group_by(LedgerLine.fund, LedgerLine.account)
            .order_by(LedgerLine.fund, LedgerLine.account)
        )
    ).all()
    return [(f, a, dr, cr) for f, a, dr, cr in rows]
