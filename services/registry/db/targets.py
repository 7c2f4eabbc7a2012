"""Targets repository and the counts target progress compares them with."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.db.models import Enterprise, Pool, PoolMembership, Recognition, Target
from services.registry.db.regions import region_cond


async def upsert(session: AsyncSession, values: dict[str, Any]) -> int:
    ins = insert(Target).values(**values)
    stmt = ins.on_conflict_do_update(
        index_elements=["region_code", "track", "measure", "level", "year"],
        set_={"target": ins.excluded.target, "source": ins.excluded.source},
    ).returning(Target.id)
    return int((await session.execute(stmt)).scalar_one())


async def within(session: AsyncSession, region: str, year: int | None) -> list[Target]:
    stmt = select(Target).where(region_cond(Target.region_code, region))
    if year:
        stmt = stmt.where(Target.year == year)
    return list((await session.scalars(stmt.order_by(Target.region_code, Target.track, Target.year))).all())


Count = tuple[str | None, str, str, int]  # region, track, level, count


async def recognised_counts(session: AsyncSession, region: str, as_of: date) -> list[Count]:
    """Recognitions valid at ``as_of``, by the recognition's region, tier and level."""
    rows = await session.execute(
        select(Recognition.region_code, Recognition.tier, Recognition.level, func.count())
        .where(
            region_cond(Recognition.region_code, region),
            Recognition.valid_from <= as_of,
            or_(Recognition.valid_to.is_(None), Recognition.valid_to >= as_of),
            or_(Recognition.status.in_(("valid", "upcoming")), Recognition.ended_on > as_of),
        )
        .group_by(Recognition.region_code, Recognition.tier, Recognition.level)
    )
    return [(r, t, lv, n) for r, t, lv, n in rows.all()]


async def pool_counts(session: AsyncSession, region: str, year: int, as_of: date) -> list[Count]:
    """Pool members at the end of the year (cohort year ≤ year, not exited by as_of), by enterprise region."""
    rows = await session.execute(
        select(Enterprise.region_code, Pool.track, Pool.level, func.count())
        .select_from(PoolMembership)
        .join(Pool, Pool.id == PoolMembership.pool_id)
        .join(Enterprise, Enterprise.uscc == PoolMembership.uscc)
        .where(
            region_cond(Enterprise.region_code, region),
            PoolMembership.year <= year,
            or_(PoolMembership.exited_on.is_(None), PoolMembership.exited_on > as_of),
        )
        .group_by(Enterprise.region_code, Pool.track, Pool.level)
    )
    return [(r, t, lv, n) for r, t, lv, n in rows.all()]
