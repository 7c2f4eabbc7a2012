"""Indicator revisions repository."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.db.models import Enterprise, IndicatorRevision, table_of

# (uscc, year) → [(source, values)] in revision order
Prior = dict[tuple[str, int], list[tuple[str, dict[str, Any]]]]


async def prior_revisions(session: AsyncSession, keys: Iterable[tuple[str, int]]) -> tuple[Prior, dict[str, int]]:
    """Stored revisions (source, values) per (uscc, year) of ``keys``, in revision order; latest year per uscc."""
    wanted = set(keys)
    usccs = list({k[0] for k in wanted})
    prior: Prior = {k: [] for k in wanted}
    latest_year: dict[str, int] = {}
    for i in range(0, len(usccs), 5000):
        rows = (
            await session.execute(
                select(
                    IndicatorRevision.uscc, IndicatorRevision.year, IndicatorRevision.source, IndicatorRevision.values
                )
                .where(IndicatorRevision.uscc.in_(usccs[i : i + 5000]))
                .order_by(IndicatorRevision.revision)
            )
        ).all()
        for u, y, src, vals in rows:
            latest_year[u] = max(latest_year.get(u, y), y)
            if (u, y) in prior:
                prior[(u, y)].append((src, vals))
    return prior, latest_year


async def insert_revisions(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    for i in range(0, len(rows), 2000):
        await session.execute(table_of(IndicatorRevision).insert(), rows[i : i + 2000])


async def set_derived_scale(session: AsyncSession, uscc: str, scale: str) -> int | None:
    """Store a derived scale (a new version of the enterprise); its new version, None if not stored yet."""
    return await session.scalar(
        update(Enterprise)
        .where(Enterprise.uscc == uscc)
        .values(scale=scale, scale_source="derived", version=Enterprise.version + 1, updated_at=func.now())
        .returning(Enterprise.version)
    )


async def revisions(session: AsyncSession, uscc: str, year: int | None = None) -> list[IndicatorRevision]:
    stmt = select(IndicatorRevision).where(IndicatorRevision.uscc == uscc)
    if year is not None:
        stmt = stmt.where(IndicatorRevision.year == year)
    return list((await session.scalars(stmt.order_by(IndicatorRevision.year, IndicatorRevision.revision))).all())


__all__ = ["Prior", "insert_revisions", "prior_revisions", "revisions", "set_derived_scale"]
