"""Enterprises repository: reads and writes of the enterprises table and the read models shown with them.

Nothing here commits: the caller (use case, consumer, worker) owns the transaction.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    or_,
    select,
    true,
)
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.db.models import (
    CommissionerAssignment,
    Enterprise,
    Pool,
    PoolMembership,
    Recognition,
    table_of,
)
from services.registry.db.regions import region_cond
from services.registry.domain import classify
from services.registry.domain.dates import today
from shared.auth import Principal, Role
from shared.db_reads import ALL, COMMISSIONER, ENTERPRISE, TERRITORY, ReadPool, ScopedRead, iso_utc, scope_of
from shared.problems import field_error, not_found


def scope_cond(principal: Principal) -> ColumnElement[bool]:
    """Which enterprises the caller may read. Commissioners read only the enterprises currently assigned to them
    (``sub`` = commissioner id, as in the notification service), from the read model kept off its
    ``commissioner.assigned`` / ``commissioner.unavailable`` events; their token region plays no part."""
    if principal.role == Role.ADMIN:
        return true()
    if principal.role == Role.ENTERPRISE:
        return Enterprise.uscc == (principal.uscc or "")
    if principal.role == Role.COMMISSIONER:
        return Enterprise.uscc.in_(
            select(CommissionerAssignment.uscc).where(CommissionerAssignment.commissioner_id == principal.sub)
        )
    return region_cond(Enterprise.region_code, principal.region)


async def insert_rows(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    for i in range(0, len(rows), 2000):
        await session.execute(table_of(Enterprise).insert(), rows[i : i + 2000])


async def existing_usccs(session: AsyncSession, usccs: Iterable[str]) -> set[str]:
    codes = list(set(usccs))
    found: set[str] = set()
    for i in range(0, len(codes), 5000):
        found.update(
            (await session.scalars(select(Enterprise.uscc).where(Enterprise.uscc.in_(codes[i : i + 5000])))).all()
        )
    return found


async def get_visible(
    session: AsyncSession, principal: Principal, uscc: str, *, for_update: bool = False
) -> Enterprise:
    stmt = select(Enterprise).where(Enterprise.uscc == uscc.strip().upper(), scope_cond(principal))
    if for_update:
        stmt = stmt.with_for_update()
    ent = (await session.scalars(stmt)).first()
    if ent is None:
        raise not_found("企业")
    return ent


async def get(session: AsyncSession, uscc: str) -> Enterprise | None:
    return await session.get(Enterprise, uscc)


async def visible_by_uscc(session: AsyncSession, principal: Principal, usccs: list[str]) -> dict[str, Enterprise]:
    rows = await session.scalars(select(Enterprise).where(Enterprise.uscc.in_(usccs), scope_cond(principal)))
    return {e.uscc: e for e in rows.all()}


def snapshot(e: Enterprise) -> dict[str, Any]:
    return {c.name: getattr(e, c.name) for c in table_of(Enterprise).columns}


def current_tier_cond() -> ColumnElement[bool]:
    """A recognition counts as a current tier: valid (upcoming titles are promoted on their day by a worker)
    and not past its end."""
    d = today()
    return and_(Recognition.status == "valid", or_(Recognition.valid_to.is_(None), Recognition.valid_to >= d))


async def current_tiers(session: AsyncSession, usccs: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {u: [] for u in usccs}
    if not usccs:
        return out
    rows = (
        await session.execute(
            select(
                Recognition.uscc,
                Recognition.recognition_id,
                Recognition.tier,
                Recognition.level,
                Recognition.valid_from,
                Recognition.valid_to,
            )
            .where(Recognition.uscc.in_(usccs), current_tier_cond())
            .order_by(Recognition.valid_from)
        )
    ).all()
    for u, rid, tier, level, valid_from, valid_to in rows:
        out[u].append(
            {"recognition_id": rid, "tier": tier, "level": level, "valid_from": valid_from, "valid_to": valid_to}
        )
    return out


async def memberships(
    session: AsyncSession, usccs: Sequence[str], *, active_only: bool = True
) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {u: [] for u in usccs}
    if not usccs:
        return out
    stmt = (
        select(
            PoolMembership.uscc,
            Pool.id,
            Pool.level,
            Pool.region_code,
            Pool.track,
            PoolMembership.year,
            PoolMembership.basis,
            PoolMembership.entered_on,
            PoolMembership.exited_on,
            PoolMembership.exit_reason,
        )
        .join(Pool, Pool.id == PoolMembership.pool_id)
        .where(PoolMembership.uscc.in_(usccs))
        .order_by(PoolMembership.entered_on, PoolMembership.id)
    )
    if active_only:
        stmt = stmt.where(PoolMembership.exited_on.is_(None))
    for u, pid, level, pregion, track, year, basis, entered, exited, reason in (await session.execute(stmt)).all():
        out[u].append(
            {
                "pool_id": pid,
                "level": level,
                "pool_region": pregion,
                "track": track,
                "year": year,
                "basis": basis,
                "entered_on": entered,
                "exited_on": exited,
                "exit_reason": reason,
            }
        )
    return out


async def active_memberships_for_update(session: AsyncSession, uscc: str) -> list[tuple[PoolMembership, Pool]]:
    rows = await session.execute(
        select(PoolMembership, Pool)
        .join(Pool, Pool.id == PoolMembership.pool_id)
        .where(PoolMembership.uscc == uscc, PoolMembership.exited_on.is_(None))
    )
    return [(m, p) for m, p in rows.all()]


# ---------------------------------------------------------------- one enterprise as shown, in one query

# EnterpriseOut's JSON, written by PostgreSQL: the enterprise with its region's name, current tiers (as
# current_tier_cond, by valid_from) and active pools (as memberships, by entered_on, id). $1 uscc, $2 today.
_VIEW = ScopedRead(
    f"""
SELECT json_build_object(
  'uscc', e.uscc, 'name', e.name, 'region_code', e.region_code, 'region_name', r.name,
  'industry_code', e.industry_code, 'is_manufacturing', e.is_manufacturing, 'founded_on', e.founded_on,
  'scale', e.scale, 'scale_source', e.scale_source, 'focus', coalesce(e.focus, '{{}}'::jsonb), 'liaison', e.liaison,
  'status', e.status, 'deregistered_reason', e.deregistered_reason, 'version', e.version,
  'created_at', {iso_utc("e.created_at")}, 'updated_at', {iso_utc("e.updated_at")},
  'current_tiers', coalesce((
    SELECT json_agg(json_build_object('recognition_id', t.recognition_id, 'tier', t.tier, 'level', t.level,
                                      'valid_from', t.valid_from, 'valid_to', t.valid_to) ORDER BY t.valid_from)
    FROM registry.recognitions t
    WHERE t.uscc = e.uscc AND t.status = 'valid' AND (t.valid_to IS NULL OR t.valid_to >= $2::date)), '[]'::json),
  'pools', coalesce((
    SELECT json_agg(json_build_object('pool_id', p.id, 'level', p.level, 'pool_region', p.region_code,
                                      'track', p.track, 'year', m.year, 'basis', m.basis, 'entered_on', m.entered_on,
                                      'exited_on', m.exited_on, 'exit_reason', m.exit_reason)
                    ORDER BY m.entered_on, m.id)
    FROM registry.pool_memberships m JOIN registry.pools p ON p.id = m.pool_id
    WHERE m.uscc = e.uscc AND m.exited_on IS NULL), '[]'::json),
  'warnings', '[]'::json)::text, e.version
FROM registry.enterprises e LEFT JOIN registry.regions r ON r.code = e.region_code
WHERE e.uscc = $1 AND {{scope}}""",
    {
        ALL: "true",
        ENTERPRISE: "e.uscc = {arg}",
        COMMISSIONER: "e.uscc IN (SELECT a.uscc FROM registry.commissioner_assignments a "
                      "WHERE a.commissioner_id = {arg})",
        TERRITORY: "e.region_code = ANY({arg}::text[])",
    },
)


async def view_json(pool: ReadPool, principal: Principal, uscc: str) -> tuple[str, int]:
    """One enterprise as shown (EnterpriseOut's JSON) and its version, in one statement without a session (the
    scopes of :func:`scope_cond`); 404 outside the caller's scope."""
    row = await _VIEW.fetchrow(pool, scope_of(principal), uscc.strip().upper(), today())
    if row is None:
        raise not_found("企业")
    return row[0], row[1]


# ---------------------------------------------------------------- listing


@dataclass
class ListFilter:
    region: str | None = None
    industry: str | None = None
    tier: str | None = None
    pool: str | None = None
    q: str | None = None
    status: str | None = None


def encode_cursor(uscc: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"u": uscc}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)["u"]
        if not isinstance(value, str):
            raise ValueError
        return value
    except (ValueError, KeyError, TypeError) as exc:
        raise field_error("cursor", "分页游标无效 (invalid cursor)") from exc


def _escape_like(s: str) -> str:
    return s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_conditions(principal: Principal, f: ListFilter) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = [scope_cond(principal)]
    if f.region:
        if len(f.region) != 6 or not f.region.isdigit():
            raise field_error("region", "区划代码须为6位数字")
        conds.append(region_cond(Enterprise.region_code, f.region))
    if f.industry:
        if not f.industry.isdigit():
            raise field_error("industry", "行业代码须为数字")
        conds.append(Enterprise.industry_code.startswith(f.industry, autoescape=True))  # no LIKE metacharacters
    if f.status:
        conds.append(Enterprise.status == f.status)
    if f.q:
        q = f.q.strip()
        conds.append(or_(Enterprise.name.ilike(f"%{_escape_like(q)}%", escape="\\"), Enterprise.uscc == q.upper()))
    if f.tier:
        conds.append(
            select(Recognition.recognition_id)
            .where(Recognition.uscc == Enterprise.uscc, Recognition.tier == f.tier, current_tier_cond())
            .exists()
        )
    if f.pool:
        sub = (
            select(PoolMembership.id)
            .join(Pool, Pool.id == PoolMembership.pool_id)
            .where(PoolMembership.uscc == Enterprise.uscc, PoolMembership.exited_on.is_(None))
        )
        if f.pool.isdigit():
            sub = sub.where(Pool.id == int(f.pool))
        else:
            level, _, track = f.pool.partition(":")
            if level not in classify.POOL_LEVELS:
                raise field_error("pool", "pool 须为培育库编号或“层级:方向”,如 county:srdi")
            sub = sub.where(Pool.level == level)
            if track:
                sub = sub.where(Pool.track == track)
        conds.append(sub.exists())
    return conds


async def list_enterprises(
    session: AsyncSession, principal: Principal, f: ListFilter, cursor: str | None, limit: int
) -> tuple[list[Enterprise], str | None]:
    conds = list_conditions(principal, f)
    if cursor:
        conds.append(Enterprise.uscc > decode_cursor(cursor))
    rows = (
        await session.scalars(select(Enterprise).where(and_(*conds)).order_by(Enterprise.uscc).limit(limit + 1))
    ).all()
    more = len(rows) > limit
    page = list(rows[:limit])
    return page, (encode_cursor(page[-1].uscc) if more and page else None)
