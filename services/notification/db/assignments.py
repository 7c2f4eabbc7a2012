"""Repository of the commissioner assignments (``assignments``) and their history (``assignment_history``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import RowMapping, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notification.db.models import assignment_history, assignments, enterprises


async def current(session: AsyncSession, uscc: str, *, for_update: bool = False) -> RowMapping | None:
    q = select(assignments).where(assignments.c.uscc == uscc)
    if for_update:
        q = q.with_for_update()
    return (await session.execute(q)).mappings().first()


async def upsert(session: AsyncSession, uscc: str, values: Mapping[str, Any]) -> None:
    await session.execute(
        insert(assignments).values(uscc=uscc, **values).on_conflict_do_update(index_elements=["uscc"], set_=values)
    )


async def set_tier(session: AsyncSession, uscc: str, tier: str) -> None:
    await session.execute(update(assignments).where(assignments.c.uscc == uscc).values(tier=tier))


async def remove(session: AsyncSession, uscc: str) -> None:
    await session.execute(delete(assignments).where(assignments.c.uscc == uscc))


async def assigned_commissioner(session: AsyncSession, uscc: str) -> str | None:
    """The enterprise's current commissioner id (None while unassigned or not needed)."""
    return (
        await session.execute(
            select(assignments.c.commissioner_id).where(assignments.c.uscc == uscc, assignments.c.status == "assigned")
        )
    ).scalar()


async def waiting(session: AsyncSession, region: str, level: str) -> Sequence[str]:
    """Enterprises waiting for a commissioner of ``region``/``level``."""
    return (
        await session.execute(
            select(assignments.c.uscc).where(
                assignments.c.status == "unassigned", assignments.c.target_region == region,
                assignments.c.level == level,
            ).order_by(assignments.c.uscc)
        )
    ).scalars().all()


async def usccs_of(session: AsyncSession, commissioner_id: str) -> Sequence[str]:
    return (
        await session.execute(select(assignments.c.uscc).where(assignments.c.commissioner_id == commissioner_id))
    ).scalars().all()


async def served(session: AsyncSession, commissioner_id: str) -> Sequence[RowMapping]:
    """The commissioner's enterprises with their names, by USCC."""
    return (
        await session.execute(
            select(assignments, enterprises.c.name)
            .join(enterprises, enterprises.c.uscc == assignments.c.uscc, isouter=True)
            .where(assignments.c.commissioner_id == commissioner_id)
            .order_by(assignments.c.uscc)
        )
    ).mappings().all()


async def add_history(
    session: AsyncSession,
    *,
    uscc: str,
    commissioner_id: str | None,
    previous: str | None,
    tier: str | None,
    level: str | None,
    reason: str,
    actor: str,
) -> None:
    await session.execute(
        assignment_history.insert().values(
            uscc=uscc, commissioner_id=commissioner_id, previous_commissioner_id=previous, tier=tier, level=level,
            reason=reason, actor=actor,
        )
    )


async def history(session: AsyncSession, uscc: str) -> Sequence[RowMapping]:
    """The enterprise's assignment history, newest first."""
    return (
        await session.execute(
            select(assignment_history).where(assignment_history.c.uscc == uscc).order_by(assignment_history.c.id.desc())
        )
    ).mappings().all()


async def last_history_id(session: AsyncSession) -> int | None:
    return (await session.execute(select(func.max(assignment_history.c.id)))).scalar()
