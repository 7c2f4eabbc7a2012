"""Queries of stored evaluations (评价结果) and re-evaluation jobs."""

from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.evaluation.db.models import Evaluation, Job


async def recent_of(session: AsyncSession, uscc: str, year: int | None = None, limit: int = 2000) -> list[Evaluation]:
    """``uscc``'s evaluations, newest first (of one indicator year when given)."""
    q = select(Evaluation).where(Evaluation.uscc == uscc)
    if year is not None:
        q = q.where(Evaluation.year == year)
    return list((await session.execute(q.order_by(Evaluation.created_at.desc()).limit(limit))).scalars().all())


def job_lock_key(kind: str, ruleset_id: str) -> str:
    """The advisory lock a live job of ``kind`` over ``ruleset_id`` holds for its whole run (session-level, on a
    connection of its own: released when the job ends or its process dies)."""
    return f"job:{kind}:{ruleset_id}"


async def try_lock(conn: AsyncConnection, key: str) -> bool:
    """Take the session-level advisory lock ``key`` on ``conn`` unless another session holds it."""
    held = (await conn.execute(text("SELECT pg_try_advisory_lock(hashtext(:k))"), {"k": key})).scalar()
    await conn.commit()
    return bool(held)


async def unlock(conn: AsyncConnection, key: str) -> None:
    await conn.execute(text("SELECT pg_advisory_unlock(hashtext(:k))"), {"k": key})
    await conn.commit()


async def unfinished_jobs(session: AsyncSession, kind: str, ruleset_id: str) -> list[Job]:
    """The queued or running jobs of ``kind`` over ``ruleset_id``, oldest first."""
    q = (
        select(Job)
        .where(Job.kind == kind, Job.ruleset_id == ruleset_id, Job.status.in_(("queued", "running")))
        .order_by(Job.created_at)
    )
    return list((await session.execute(q)).scalars().all())
