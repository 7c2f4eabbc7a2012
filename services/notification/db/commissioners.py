"""Repository of the 服务专员 directory (``commissioners``) and their loads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Row, RowMapping, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.notification.db.models import assignments, commissioners


async def get(session: AsyncSession, cid: str, *, for_update: bool = False) -> RowMapping | None:
    q = select(commissioners).where(commissioners.c.id == cid)
    if for_update:
        q = q.with_for_update()
    return (await session.execute(q)).mappings().first()


async def exists(session: AsyncSession, cid: str) -> bool:
    return (await session.execute(select(commissioners.c.id).where(commissioners.c.id == cid))).first() is not None


async def name_of(session: AsyncSession, cid: str) -> str | None:
    return (await session.execute(select(commissioners.c.name).where(commissioners.c.id == cid))).scalar()


async def is_active(session: AsyncSession, cid: str | None) -> bool:
    return bool((await session.execute(select(commissioners.c.active).where(commissioners.c.id == cid))).scalar())


async def insert(session: AsyncSession, cid: str, values: Mapping[str, Any]) -> None:
    await session.execute(commissioners.insert().values(id=cid, **values))


async def change(session: AsyncSession, cid: str, changes: Mapping[str, Any]) -> None:
    await session.execute(
        update(commissioners).where(commissioners.c.id == cid).values(**changes, updated_at=func.now())
    )


async def listing(
    session: AsyncSession, *, region: str | None, level: str | None, active: bool | None
) -> Sequence[RowMapping]:
    q = select(commissioners).order_by(commissioners.c.region, commissioners.c.id)
    if region:
        q = q.where(commissioners.c.region == region)
    if level:
        q = q.where(commissioners.c.level == level)
    if active is not None:
        q = q.where(commissioners.c.active.is_(active))
    return (await session.execute(q)).mappings().all()


async def load(session: AsyncSession, cid: str) -> int:
    """How many enterprises the commissioner serves now."""
    return int((await session.execute(select(func.count()).where(assignments.c.commissioner_id == cid))).scalar_one())


async def loads(session: AsyncSession, ids: Sequence[str]) -> dict[str, int]:
    rows = await session.execute(
        select(assignments.c.commissioner_id, func.count())
        .where(assignments.c.commissioner_id.in_(list(ids)))
        .group_by(assignments.c.commissioner_id)
    )
    return {str(cid): int(n) for cid, n in rows.all()}


async def active_locked(session: AsyncSession, region: str, level: str) -> Sequence[Row[Any]]:
    """Active commissioners of ``region``/``level`` (id, capacity, active), rows locked to serialise capacity."""
    return (
        await session.execute(
            select(commissioners.c.id, commissioners.c.capacity, commissioners.c.active)
            .where(commissioners.c.region == region, commissioners.c.level == level, commissioners.c.active)
            .order_by(commissioners.c.id)
            .with_for_update()
        )
    ).all()
