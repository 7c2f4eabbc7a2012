"""Repository of the gap advice: the policy rewards read model (``policy_rewards``) and the advices sent
(``gap_advices``, unique per enterprise, tier and year)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import RowMapping, and_, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notification.db.models import assignments, enterprises, gap_advices, policies, policy_rewards


async def replace_rewards(session: AsyncSession, policy_id: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """The policy's rewards as last published (a republication replaces them)."""
    await session.execute(delete(policy_rewards).where(policy_rewards.c.policy_id == policy_id))
    if rows:
        await session.execute(insert(policy_rewards).values([{"policy_id": policy_id, **r} for r in rows]))


async def rewards_for(
    session: AsyncSession, jurisdictions: Sequence[str], tier: str, level: str | None, on: date
) -> Sequence[RowMapping]:
    """In-force rewards for ``tier`` (at ``level``, or any level) of the given jurisdictions, with policy names,
    largest first."""
    q = (
        select(policy_rewards.c.jurisdiction, policy_rewards.c.amount, policy_rewards.c.policy_id, policies.c.name)
        .join(policies, policies.c.policy_id == policy_rewards.c.policy_id, isouter=True)
        .where(
            policy_rewards.c.jurisdiction.in_(list(jurisdictions)),
            policy_rewards.c.tier == tier,
            or_(policy_rewards.c.effective_from.is_(None), policy_rewards.c.effective_from <= on),
            or_(policy_rewards.c.effective_to.is_(None), policy_rewards.c.effective_to >= on),
        )
        .order_by(policy_rewards.c.amount.desc(), policy_rewards.c.policy_id)
    )
    if level is not None:
        q = q.where(or_(policy_rewards.c.level.is_(None), policy_rewards.c.level == level))
    return (await session.execute(q)).mappings().all()


async def claim(session: AsyncSession, values: Mapping[str, Any]) -> bool:
    """Record the advice for (uscc, tier, year); False when that enterprise had it for this tier and year."""
    inserted = (
        await session.execute(
            insert(gap_advices).values(**values).on_conflict_do_nothing().returning(gap_advices.c.uscc)
        )
    ).first()
    return inserted is not None


async def set_notice(session: AsyncSession, uscc: str, tier: str, year: int, notice_id: int | None) -> None:
    await session.execute(
        update(gap_advices)
        .where(and_(gap_advices.c.uscc == uscc, gap_advices.c.tier == tier, gap_advices.c.year == year))
        .values(notice_id=notice_id)
    )


async def of_commissioner(session: AsyncSession, commissioner_id: str, year: int | None) -> Sequence[RowMapping]:
    """The advices of the enterprises the commissioner serves now, nearest first (money gaps by amount)."""
    q = (
        select(gap_advices, enterprises.c.name)
        .join(assignments, assignments.c.uscc == gap_advices.c.uscc)
        .join(enterprises, enterprises.c.uscc == gap_advices.c.uscc, isouter=True)
        .where(assignments.c.commissioner_id == commissioner_id, assignments.c.status == "assigned")
        .order_by(gap_advices.c.yuan_gap.asc().nulls_last(), gap_advices.c.unmet, gap_advices.c.uscc,
                  gap_advices.c.tier, gap_advices.c.year.desc())
    )
    if year is not None:
        q = q.where(gap_advices.c.year == year)
    return (await session.execute(q)).mappings().all()
