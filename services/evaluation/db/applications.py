"""Queries of applications (申报), their objections and the inputs a review decides on."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.evaluation.db.commissioners import assigned_to
from services.evaluation.db.models import Application, Evaluation, IndicatorReport, Objection
from shared.db import in_territory


async def get(session: AsyncSession, app_id: uuid.UUID, *, lock: bool = False) -> Application | None:
    q = select(Application).where(Application.id == app_id)
    if lock:
        q = q.with_for_update()
    return (await session.execute(q)).scalar_one_or_none()


async def open_objection_count(session: AsyncSession, app_id: uuid.UUID) -> int:
    q = select(func.count()).where(Objection.application_id == app_id, Objection.status == "open")
    return int((await session.execute(q)).scalar() or 0)


async def objections_of(session: AsyncSession, app_id: uuid.UUID) -> list[Objection]:
    q = select(Objection).where(Objection.application_id == app_id)
    return list((await session.execute(q)).scalars().all())


async def pending_duplicate(
    session: AsyncSession, uscc: str, tier: str, batch_year: int, closed: Sequence[str]
) -> uuid.UUID | None:
    """An application of the same enterprise, tier and batch that is not in one of the ``closed`` states."""
    q = select(Application.id).where(
        Application.uscc == uscc,
        Application.tier == tier,
        Application.batch_year == batch_year,
        Application.state.not_in(list(closed)),
    )
    row = (await session.execute(q)).first()
    return None if row is None else row[0]


async def latest_evaluation(session: AsyncSession, uscc: str, tier: str, ruleset_id: str) -> Evaluation | None:
    """``uscc``'s newest evaluation for ``tier`` under the rule set ``ruleset_id``."""
    q = (
        select(Evaluation)
        .where(Evaluation.uscc == uscc, Evaluation.tier == tier, Evaluation.ruleset_id == ruleset_id)
        .order_by(Evaluation.created_at.desc())
        .limit(1)
    )
    return (await session.execute(q)).scalar_one_or_none()


async def report_years(session: AsyncSession, uscc: str) -> set[int]:
    return set((await session.execute(select(IndicatorReport.year).where(IndicatorReport.uscc == uscc))).scalars())


async def latest_report(session: AsyncSession, uscc: str) -> IndicatorReport | None:
    q = select(IndicatorReport).where(IndicatorReport.uscc == uscc).order_by(IndicatorReport.year.desc())
    return (await session.execute(q)).scalars().first()


async def listing(
    session: AsyncSession,
    *,
    uscc: str | None = None,
    territory: str | None = None,
    commissioner: str | None = None,
    state: str | None = None,
    tier: str | None = None,
    batch_year: int | None = None,
    limit: int = 100,
) -> list[Application]:
    """Newest first; ``uscc`` for an enterprise's own, ``territory`` (a region code) for an official's,
    ``commissioner`` for those of the enterprises assigned to that commissioner."""
    q = select(Application).order_by(Application.created_at.desc())
    if uscc is not None:
        q = q.where(Application.uscc == uscc)
    if territory is not None:
        q = q.where(in_territory(Application.region_code, territory))
    if commissioner is not None:
        q = q.where(Application.uscc.in_(assigned_to(commissioner)))
    if state:
        q = q.where(Application.state == state)
    if tier:
        q = q.where(Application.tier == tier)
    if batch_year:
        q = q.where(Application.batch_year == batch_year)
    return list((await session.execute(q.limit(limit))).scalars().all())
