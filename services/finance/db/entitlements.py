"""Entitlement repository: the business-key insert, the rows 从高不重复 compares with, listings."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.finance.db.models import DeferredRecognitionRow, EntitlementRow
from shared.db import in_territory

LIVE = ("pending", "nothing_due", "approved", "paid")  # counts for 从高不重复 and enterprise caps


async def lock(session: AsyncSession, key: str) -> None:
    """Transaction-scoped advisory lock (one writer per enterprise and policy)."""
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": key})


async def insert_once(session: AsyncSession, values: dict[str, Any]) -> EntitlementRow | None:
    """INSERT … ON CONFLICT (business key) DO NOTHING: None when it already existed."""
    eid = uuid.uuid4()
    res = await session.execute(
        insert(EntitlementRow)
        .values(id=eid, **values)
        .on_conflict_do_nothing(constraint="uq_entitlements_business_key")
        .returning(EntitlementRow.id)
    )
    if res.first() is None:
        return None
    return await session.get(EntitlementRow, eid)


async def prior(session: AsyncSession, uscc: str, policy_id: str) -> list[EntitlementRow]:
    """The enterprise's live entitlements under a policy, oldest first."""
    return list(
        (
            await session.execute(
                select(EntitlementRow)
                .where(
                    EntitlementRow.uscc == uscc,
                    EntitlementRow.policy_id == policy_id,
                    EntitlementRow.status.in_(LIVE),
                )
                .order_by(EntitlementRow.created_at)
            )
        ).scalars()
    )


async def granted_total(session: AsyncSession, uscc: str, policy_id: str) -> Decimal:
    return sum((p.amount for p in await prior(session, uscc, policy_id)), Decimal("0"))


async def by_recognition(session: AsyncSession, recognition_id: str, uscc: str) -> list[EntitlementRow]:
    return list(
        (
            await session.execute(
                select(EntitlementRow)
                .where(EntitlementRow.recognition_id == recognition_id, EntitlementRow.uscc == uscc)
                .order_by(EntitlementRow.created_at)
                .with_for_update()
            )
        ).scalars()
    )


async def get(session: AsyncSession, entitlement_id: uuid.UUID, *, for_update: bool = False) -> EntitlementRow | None:
    return await session.get(EntitlementRow, entitlement_id, with_for_update=for_update)


async def get_locked(session: AsyncSession, entitlement_id: uuid.UUID) -> EntitlementRow | None:
    return (
        await session.execute(select(EntitlementRow).where(EntitlementRow.id == entitlement_id).with_for_update())
    ).scalar_one_or_none()


async def listing(
    session: AsyncSession,
    *,
    uscc_scope: str | None,
    territory: str | None,
    filters: dict[str, Any],
    limit: int,
) -> list[EntitlementRow]:
    stmt = select(EntitlementRow).order_by(EntitlementRow.created_at.desc())
    if uscc_scope is not None:
        stmt = stmt.where(EntitlementRow.uscc == uscc_scope)
    if territory is not None:
        stmt = stmt.where(in_territory(EntitlementRow.jurisdiction, territory))
    for col, v in filters.items():
        if v is not None:
            stmt = stmt.where(getattr(EntitlementRow, col) == v)
    return list((await session.execute(stmt.limit(limit))).scalars())


async def of_enterprise(session: AsyncSession, uscc: str) -> list[EntitlementRow]:
    return list(
        (
            await session.execute(
                select(EntitlementRow).where(EntitlementRow.uscc == uscc)
                .order_by(EntitlementRow.created_at, EntitlementRow.id)
            )
        ).scalars()
    )


async def count(session: AsyncSession, **where: Any) -> int:
    stmt = select(func.count()).select_from(EntitlementRow)
    for k, v in where.items():
        stmt = stmt.where(getattr(EntitlementRow, k) == v)
    return int((await session.execute(stmt)).scalar_one())


# ------------------------------------------------------------------ migrated-in titles waiting for their year


async def defer(
    session: AsyncSession, *, uscc: str, recognition_id: str, region_code: str, payload: dict[str, Any], due_on: date
) -> None:
    """Keep a recognition to apply again on ``due_on`` (once per recognition and region)."""
    await session.execute(
        insert(DeferredRecognitionRow)
        .values(
            id=uuid.uuid4(),
            uscc=uscc,
            recognition_id=recognition_id,
            region_code=region_code,
            payload=payload,
            due_on=due_on,
        )
        .on_conflict_do_nothing(index_elements=["recognition_id", "uscc", "region_code"])
    )


async def take_due(session: AsyncSession, on: date, limit: int = 100) -> list[DeferredRecognitionRow]:
    """Claim (lock, skipping rows another worker holds) and delete the deferrals due on ``on``."""
    rows = list(
        (
            await session.execute(
                select(DeferredRecognitionRow)
                .where(DeferredRecognitionRow.due_on <= on)
                .order_by(DeferredRecognitionRow.due_on)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).scalars()
    )
    for row in rows:
        await session.delete(row)
    return rows
