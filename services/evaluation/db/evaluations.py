"""Queries of stored evaluations (评价结果) and re-evaluation jobs."""

from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.evaluation.db.models import Evaluation, Job


async def recent_of(session: AsyncSession, uscc: str, year: int | None = None, limit: int = 2000) -> list[Evaluation]:
    """``uscc``'s evaluations, newest first (of one indicator year when given)."""
    q = select(Evaluation).where(Evaluation.uscc == uscc)
    if year is not None:
        q = q.where(Evaluation.year == year)
    return list((await session.execute(q.order_by(Evaluation.created_at.desc()).limit(limit))).scalars().all())


async def unfinished_job(session: AsyncSession, kind: str, ruleset_id: str) -> Job | None:
    """The queued or running job of ``kind`` over ``ruleset_id``, if any, after taking a transaction-scoped
    advisory lock on (kind, rule set): two requests at once cannot both find none and both start one."""
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"job:{kind}:{ruleset_id}"})
    q = (
        select(Job)
        .where(Job.kind == kind, Job.ruleset_id == ruleset_id, Job.status.in_(("queued", "running")))
        .order_by(Job.created_at)
        .limit(1)
    )
    return (await session.execute(q)).scalar_one_or_none()
