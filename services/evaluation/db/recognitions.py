"""Queries of recognitions (认定称号) and application bans."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.evaluation.db.models import ApplicationBan, Recognition


async def of_enterprise(session: AsyncSession, uscc: str) -> list[Recognition]:
    """Every title of ``uscc``, the latest validity first."""
    q = select(Recognition).where(Recognition.uscc == uscc).order_by(Recognition.valid_from.desc())
    return list((await session.execute(q)).scalars().all())


async def active_of(session: AsyncSession, uscc: str, *, lock: bool = False) -> list[Recognition]:
    q = select(Recognition).where(Recognition.uscc == uscc, Recognition.status == "active")
    if lock:
        q = q.with_for_update()
    return list((await session.execute(q)).scalars().all())


async def active_ban(session: AsyncSession, uscc: str, on: date) -> ApplicationBan | None:
    q = (
        select(ApplicationBan)
        .where(ApplicationBan.uscc == uscc, ApplicationBan.banned_until >= on, ApplicationBan.banned_from <= on)
        .order_by(ApplicationBan.banned_until.desc())
        .limit(1)
    )
    return (await session.execute(q)).scalar_one_or_none()
