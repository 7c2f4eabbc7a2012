"""Recovery (追回) and reconciliation records."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.finance.db.models import ReconciliationRow, RecoveryRow


async def insert_once(session: AsyncSession, values: dict[str, Any]) -> RecoveryRow | None:
    """One recovery per entitlement: None when it already exists."""
    rid = uuid.uuid4()
    res = await session.execute(
        insert(RecoveryRow)
        .values(id=rid, **values)
        .on_conflict_do_nothing(index_elements=["entitlement_id"])
        .returning(RecoveryRow.id)
    )
    if res.first() is None:
        return None
    return await session.get(RecoveryRow, rid)


async def get(session: AsyncSession, recovery_id: uuid.UUID, *, for_update: bool = False) -> RecoveryRow | None:
    return await session.get(RecoveryRow, recovery_id, with_for_update=for_update)


async def listing(session: AsyncSession, *, status: str | None) -> list[RecoveryRow]:
    stmt = select(RecoveryRow).order_by(RecoveryRow.created_at.desc())
    if status:
        stmt = stmt.where(RecoveryRow.status == status)
    return list((await session.execute(stmt)).scalars())


async def reconciliations(session: AsyncSession, limit: int = 100) -> list[ReconciliationRow]:
    return list(
        (
            await session.execute(select(ReconciliationRow).order_by(ReconciliationRow.created_at.desc()).limit(limit))
        ).scalars()
    )
