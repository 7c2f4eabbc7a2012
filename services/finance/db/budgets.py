"""Budget repository: one row per (jurisdiction, fund, year); every change posts its ledger movement."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.finance.db.ledger import post
from services.finance.db.models import BudgetChangeRow, BudgetRow
from services.finance.domain.money import ZERO, q


def _where(jurisdiction: str, fund: str, year: int) -> Any:
    return and_(BudgetRow.jurisdiction == jurisdiction, BudgetRow.fund == fund, BudgetRow.year == year)


async def find(session: AsyncSession, jurisdiction: str, fund: str, year: int) -> BudgetRow | None:
    return (await session.execute(select(BudgetRow).where(_where(jurisdiction, fund, year)))).scalar_one_or_none()


async def listing(
    session: AsyncSession, *, jurisdiction: str | None, fund: str | None, year: int | None
) -> list[BudgetRow]:
    stmt = select(BudgetRow).order_by(BudgetRow.jurisdiction, BudgetRow.fund, BudgetRow.year)
    if jurisdiction:
        stmt = stmt.where(BudgetRow.jurisdiction == jurisdiction)
    if fund:
        stmt = stmt.where(BudgetRow.fund == fund)
    if year:
        stmt = stmt.where(BudgetRow.year == year)
    return list((await session.execute(stmt)).scalars())


async def allocate(
    session: AsyncSession, jurisdiction: str, fund: str, year: int, amount: Decimal, memo: str = ""
) -> BudgetRow:
    """Create the budget or raise its total by ``amount`` (posts an ``allocate`` movement)."""
    await session.execute(
        insert(BudgetRow)
        .values(id=uuid.uuid4(), jurisdiction=jurisdiction, fund=fund, year=year, total=ZERO)
        .on_conflict_do_nothing(index_elements=["jurisdiction", "fund", "year"])
    )
    if amount > ZERO:
        await session.execute(
            update(BudgetRow).where(_where(jurisdiction, fund, year)).values(total=BudgetRow.total + q(amount))
        )
        await post(session, "allocate", jurisdiction, fund, year, amount, memo=memo or "预算下达")
    row = (await session.execute(select(BudgetRow).where(_where(jurisdiction, fund, year)))).scalar_one()
    await session.refresh(row)
    return row


async def try_reserve(
    session: AsyncSession, jurisdiction: str, fund: str, year: int, amount: Decimal, entitlement_id: uuid.UUID
) -> bool:
    """Conditional UPDATE: reserve only if the budget has the money (concurrency safe without a lock)."""
    amount = q(amount)
    got = (
        await session.execute(
            update(BudgetRow)
            .where(_where(jurisdiction, fund, year), BudgetRow.total - BudgetRow.reserved - BudgetRow.spent >= amount)
            .values(reserved=BudgetRow.reserved + amount)
            .returning(BudgetRow.id)
        )
    ).first()
    if got is None:
        return False
    await post(session, "reserve", jurisdiction, fund, year, amount, entitlement_id=entitlement_id, memo="审批预留")
    return True


async def release(
    session: AsyncSession, jurisdiction: str, fund: str, year: int, amount: Decimal, entitlement_id: uuid.UUID
) -> None:
    if await post(session, "release", jurisdiction, fund, year, amount, entitlement_id=entitlement_id, memo="取消释放"):
        await session.execute(
            update(BudgetRow).where(_where(jurisdiction, fund, year)).values(reserved=BudgetRow.reserved - q(amount))
        )


async def consume(
    session: AsyncSession, jurisdiction: str, fund: str, year: int, amount: Decimal, entitlement_id: uuid.UUID
) -> bool:
    """Payment confirmed: reserved → spent, once per entitlement."""
    if not await post(session, "pay", jurisdiction, fund, year, amount, entitlement_id=entitlement_id, memo="拨付"):
        return False
    await session.execute(
        update(BudgetRow)
        .where(_where(jurisdiction, fund, year))
        .values(reserved=BudgetRow.reserved - q(amount), spent=BudgetRow.spent + q(amount))
    )
    return True


async def repaid(
    session: AsyncSession, jurisdiction: str, fund: str, year: int, amount: Decimal, entitlement_id: uuid.UUID
) -> bool:
    if not await post(
        session, "repaid", jurisdiction, fund, year, amount, entitlement_id=entitlement_id, memo="追回到账"
    ):
        return False
    await session.execute(
        update(BudgetRow).where(_where(jurisdiction, fund, year)).values(spent=BudgetRow.spent - q(amount))
    )
    return True


# ------------------------------------------------------------------ requested changes (maker-checker)


async def get_change(
    session: AsyncSession, change_id: uuid.UUID, *, for_update: bool = False
) -> BudgetChangeRow | None:
    return await session.get(BudgetChangeRow, change_id, with_for_update=for_update)


async def changes(
    session: AsyncSession, *, jurisdiction: str | None, status: str | None, limit: int = 500
) -> list[BudgetChangeRow]:
    stmt = select(BudgetChangeRow).order_by(BudgetChangeRow.requested_at.desc()).limit(limit)
    if jurisdiction:
        stmt = stmt.where(BudgetChangeRow.jurisdiction == jurisdiction)
    if status:
        stmt = stmt.where(BudgetChangeRow.status == status)
    return list((await session.execute(stmt)).scalars())
