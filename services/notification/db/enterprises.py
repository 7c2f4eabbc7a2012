"""Repository of the enterprise read model: enterprises (registry events), their titles (evaluation's
recognition events) and the tiers they were last evaluated eligible for (evaluation.completed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import RowMapping, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notification.db.models import eligibilities, enterprises, recognitions
from shared.db import in_territory


async def get(session: AsyncSession, uscc: str, *, for_update: bool = False) -> RowMapping | None:
    q = select(enterprises).where(enterprises.c.uscc == uscc)
    if for_update:
        q = q.with_for_update()
    return (await session.execute(q)).mappings().first()


async def name_of(session: AsyncSession, uscc: str) -> str | None:
    return (await session.execute(select(enterprises.c.name).where(enterprises.c.uscc == uscc))).scalar()


async def region_of(session: AsyncSession, uscc: str) -> str | None:
    return (await session.execute(select(enterprises.c.region_code).where(enterprises.c.uscc == uscc))).scalar()


async def live_region(session: AsyncSession, uscc: str) -> str | None:
    """The enterprise's region; None once it is deregistered (or unknown)."""
    row = (
        await session.execute(select(enterprises.c.region_code, enterprises.c.deregistered)
                              .where(enterprises.c.uscc == uscc))
    ).first()
    return None if row is None or row.deregistered else str(row.region_code)


async def upsert_versioned(session: AsyncSession, uscc: str, values: Mapping[str, Any]) -> bool:
    """Apply a registry snapshot unless a newer version is already stored; True when applied."""
    stmt = insert(enterprises).values(uscc=uscc, **values)
    applied = (
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["uscc"], set_=dict(values), where=enterprises.c.version <= stmt.excluded.version
            ).returning(enterprises.c.uscc)
        )
    ).first()
    return applied is not None


async def ensure(session: AsyncSession, uscc: str, region_code: str) -> None:
    """A stub the registry's event later completes (recognitions may arrive first)."""
    await session.execute(
        insert(enterprises).values(uscc=uscc, region_code=region_code, version=0).on_conflict_do_nothing()
    )


async def mark_deregistered(session: AsyncSession, uscc: str) -> None:
    await session.execute(update(enterprises).where(enterprises.c.uscc == uscc).values(deregistered=True))


async def live_in(session: AsyncSession, territory: str) -> Sequence[str]:
    """USCCs of the live enterprises within ``territory`` (a region code, by the GB/T 2260 tree)."""
    return (
        await session.execute(
            select(enterprises.c.uscc).where(
                in_territory(enterprises.c.region_code, territory), enterprises.c.deregistered.is_(False),
            ).order_by(enterprises.c.uscc)
        )
    ).scalars().all()


# --- titles -------------------------------------------------------------------------------------------------


async def upsert_recognition(session: AsyncSession, recognition_id: str, values: Mapping[str, Any]) -> None:
    await session.execute(
        insert(recognitions).values(recognition_id=recognition_id, **values)
        .on_conflict_do_update(index_elements=["recognition_id"], set_=dict(values))
    )


async def end_recognition(session: AsyncSession, recognition_id: str, status: str) -> None:
    await session.execute(
        update(recognitions).where(recognitions.c.recognition_id == recognition_id)
        .values(status=status, updated_at=datetime.now(UTC))
    )


async def recognition_status(session: AsyncSession, recognition_id: str) -> str | None:
    return (
        await session.execute(select(recognitions.c.status).where(recognitions.c.recognition_id == recognition_id))
    ).scalar()


async def active_tiers(session: AsyncSession, uscc: str) -> list[str]:
    rows = await session.execute(
        select(recognitions.c.tier).where(recognitions.c.uscc == uscc, recognitions.c.status == "active")
    )
    return [r[0] for r in rows]


async def has_active_title(session: AsyncSession, uscc: str) -> bool:
    found = (
        await session.execute(
            select(recognitions.c.recognition_id)
            .where(recognitions.c.uscc == uscc, recognitions.c.status == "active").limit(1)
        )
    ).first()
    return found is not None


# --- eligibility --------------------------------------------------------------------------------------------


async def record_eligibility(session: AsyncSession, uscc: str, year: int, results: Sequence[tuple[str, bool]]) -> None:
    """Keep the latest year's eligibility per tier (an older year's result never overwrites a newer one). One
    statement for the results (several rule sets of a tier: the last one's, as one upsert after another left it)."""
    last = {tier: eligible for tier, eligible in results}
    if not last:
        return
    stmt = insert(eligibilities).values(
        [{"uscc": uscc, "tier": t, "year": year, "eligible": e} for t, e in last.items()])
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["uscc", "tier"], set_={"year": stmt.excluded.year, "eligible": stmt.excluded.eligible},
            where=eligibilities.c.year <= stmt.excluded.year,
        )
    )


async def eligible_tiers(session: AsyncSession, uscc: str) -> list[str]:
    return list(
        (
            await session.execute(
                select(eligibilities.c.tier).where(eligibilities.c.uscc == uscc, eligibilities.c.eligible)
            )
        ).scalars().all()
    )
