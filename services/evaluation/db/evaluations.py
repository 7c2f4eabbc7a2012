"""Queries of stored evaluations (评价结果) and re-evaluation jobs."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.evaluation.db.models import Evaluation


async def recent_of(session: AsyncSession, uscc: str, year: int | None = None, limit: int = 2000) -> list[Evaluation]:
    """``uscc``'s evaluations, newest first (of one indicator year when given)."""
    q = select(Evaluation).where(Evaluation.uscc == uscc)
    if year is not None:
        q = q.where(Evaluation.year == year)
    return list((await session.execute(q.order_by(Evaluation.created_at.desc()).limit(limit))).scalars().all())
