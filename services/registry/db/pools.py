"""Pools repository: cultivation pools and their memberships."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.db.models import Enterprise, Pool, PoolMembership
from shared.db import driver_connection, insert_or_skip_conflicts
from shared.tiers import LEVEL_NAMES, tier_name


def pool_name(level: str, track: str) -> str:
    """``县(市、区)级专精特新中小企业培育库``: the pool level's and the track's names from ``shared.tiers``."""
    return f"{LEVEL_NAMES[level]}{tier_name(track)}培育库"


async def get_or_create_pool(session: AsyncSession, level: str, region: str, track: str) -> Pool:
    await session.execute(
        insert(Pool)
        .values(level=level, region_code=region, track=track, name=pool_name(level, track))
        .on_conflict_do_nothing()
    )
    pool = (
        await session.scalars(select(Pool).where(Pool.level == level, Pool.region_code == region, Pool.track == track))
    ).one()
    return pool


async def county_pools(session: AsyncSession, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Pool]:
    """The county pools of (region, track) ``keys`` that exist."""
    from sqlalchemy import tuple_

    rows = await session.scalars(
        select(Pool).where(Pool.level == "county", tuple_(Pool.region_code, Pool.track).in_(keys))
    )
    return {(p.region_code, p.track): p for p in rows}


async def active_membership_id(session: AsyncSession, pool_id: int, uscc: str) -> int | None:
    return await session.scalar(
        select(PoolMembership.id).where(
            PoolMembership.pool_id == pool_id, PoolMembership.uscc == uscc, PoolMembership.exited_on.is_(None)
        )
    )


async def active_membership_for_update(
    session: AsyncSession, level: str, region: str, track: str, uscc: str
) -> tuple[PoolMembership, Pool] | None:
    row = (
        await session.execute(
            select(PoolMembership, Pool)
            .join(Pool, Pool.id == PoolMembership.pool_id)
            .where(
                Pool.level == level,
                Pool.region_code == region,
                Pool.track == track,
                PoolMembership.uscc == uscc,
                PoolMembership.exited_on.is_(None),
            )
            .with_for_update(of=PoolMembership)
        )
    ).first()
    return None if row is None else (row[0], row[1])


async def pools_of(session: AsyncSession, level: str, region: str, track: str | None) -> list[Pool]:
    stmt = select(Pool).where(Pool.level == level, Pool.region_code == region)
    if track:
        stmt = stmt.where(Pool.track == track)
    return list((await session.scalars(stmt.order_by(Pool.track))).all())


async def members(
    session: AsyncSession, pool_ids: list[int], year_end: date | None
) -> list[tuple[PoolMembership, Enterprise]]:
    """Members of the pools: current ones (``year_end`` None), or those entered by the year and not exited by
    its end."""
    if not pool_ids:
        return []
    stmt = (
        select(PoolMembership, Enterprise)
        .join(Enterprise, Enterprise.uscc == PoolMembership.uscc)
        .where(PoolMembership.pool_id.in_(pool_ids))
    )
    if year_end is None:
        stmt = stmt.where(PoolMembership.exited_on.is_(None))
    else:
        stmt = stmt.where(
            PoolMembership.year <= year_end.year,
            or_(PoolMembership.exited_on.is_(None), PoolMembership.exited_on > year_end),
        )
    rows = await session.execute(stmt.order_by(PoolMembership.pool_id, Enterprise.name))
    return [(m, e) for m, e in rows.all()]


def add_membership(session: AsyncSession, **values: Any) -> PoolMembership:
    m = PoolMembership(**values)
    session.add(m)
    return m


# ---------------------------------------------------------------- entry by rule result, set-based
# The statements take arrays, so their text (and the server's prepared plan) is the same whatever the batch
# size; they run on the driver connection: a re-evaluation's 100,000 events pass here in batches, and
# SQLAlchemy's statement and result layers cost more per row than the statements themselves.
_LOCK_ACTIVE = (
    "SELECT uscc, region_code FROM registry.enterprises WHERE uscc = ANY($1::text[]) "
    "AND status = 'active' ORDER BY uscc FOR UPDATE"
)
_MEMBERSHIPS = (
    "SELECT pool_id, uscc, year, exited_on FROM registry.pool_memberships "
    "WHERE uscc = ANY($1::text[]) AND pool_id = ANY($2::int[])"
)
_ENTER = (
    "INSERT INTO registry.pool_memberships (pool_id, uscc, year, basis, reason, entered_on, entered_by) "
    "SELECT p, u, y, 'rule_result', r, $5::date, $6::text "
    "FROM unnest($1::int[], $2::text[], $3::int[], $4::text[]) AS t(p, u, y, r) "
)
_ENTERED = " RETURNING id, pool_id, uscc"
# a concurrent nomination's active membership is skipped (and no row returned for it)
_ENTER_SKIPPING = " ON CONFLICT (pool_id, uscc) WHERE exited_on IS NULL DO NOTHING"


async def lock_active(session: AsyncSession, usccs: list[str]) -> dict[str, str]:
    """Lock the active enterprises among ``usccs`` (in key order, like the nomination route locks one, so the
    two paths serialise); uscc → region code."""
    raw = await driver_connection(session)
    return {member: region for member, region in await raw.fetch(_LOCK_ACTIVE, usccs)}


async def memberships_of(session: AsyncSession, usccs: list[str], pool_ids: list[int]) -> list[Any]:
    """Records (pool id, uscc, year, exited_on) of every membership of ``usccs`` in ``pool_ids``."""
    raw = await driver_connection(session)
    rows: list[Any] = await raw.fetch(_MEMBERSHIPS, usccs, pool_ids)
    return rows


async def enter_rule_results(session: AsyncSession, args: tuple[Any, ...]) -> list[Any]:
    """Insert memberships by rule result (``args``: pool ids, usccs, years, reasons, entered_on, entered_by);
    (id, pool_id, uscc) of those inserted. A conflict (a nomination that entered the enterprise meanwhile) is
    rare: the plain insert is tried first (``insert_or_skip_conflicts``)."""
    raw = await driver_connection(session)
    return await insert_or_skip_conflicts(
        raw,
        lambda: raw.fetch(_ENTER + _ENTERED, *args),
        lambda: raw.fetch(_ENTER + _ENTER_SKIPPING + _ENTERED, *args),
    )
