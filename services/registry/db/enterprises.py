"""Enterprises repository: reads and writes of the enterprises table and the read models shown with them.

Nothing here commits: the caller (use case, consumer, worker) owns the transaction.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import (
    ARRAY,
    JSON,
    ColumnElement,
    Date,
    String,
    and_,
    any_,
    bindparam,
    func,
    literal_column,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.db.models import (
    CommissionerAssignment,
    Enterprise,
    Pool,
    PoolMembership,
    Recognition,
    Region,
    table_of,
)
from services.registry.db.regions import region_cond
from services.registry.domain import classify
from services.registry.domain.dates import today
from shared.auth import Principal, Role
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

_VIEW_COLUMNS = (
    "uscc", "name", "region_code", "region_name", "industry_code", "is_manufacturing", "founded_on", "scale",
    "scale_source", "focus", "liaison", "status", "deregistered_reason", "version", "created_at", "updated_at",
    "current_tiers", "pools",
)


@cache
def _view_template(scope: str) -> Any:
    """The enterprise's row with its region's name, current tiers and active pools (JSON arrays built by the
    database, in the order ``current_tiers``/``memberships`` give them), for one kind of caller (``scope``).

    Built once per kind, with bound parameters (``uscc``, ``today`` and the scope's ``codes`` or ``who``): building
    the expression and hashing it for the compiled cache anew on every request cost more CPU than the rest of the
    read (a py-spy profile under wrk: a quarter of the registry's samples)."""
    r, m, p = Recognition, PoolMembership, Pool
    current = and_(r.status == "valid", or_(r.valid_to.is_(None), r.valid_to >= bindparam("today", type_=Date)))
    tiers = (
        select(
            func.coalesce(
                func.json_agg(
                    aggregate_order_by(
                        func.json_build_object(
                            "recognition_id", r.recognition_id, "tier", r.tier, "level", r.level,
                            "valid_from", r.valid_from, "valid_to", r.valid_to,
                        ),
                        r.valid_from,
                    )
                ),
                literal_column("'[]'::json"),
            )
        )
        .where(r.uscc == Enterprise.uscc, current)
        .scalar_subquery()
    )
    pools = (
        select(
            func.coalesce(
                func.json_agg(
                    aggregate_order_by(
                        func.json_build_object(
                            "pool_id", p.id, "level", p.level, "pool_region", p.region_code, "track", p.track,
                            "year", m.year, "basis", m.basis, "entered_on", m.entered_on, "exited_on", m.exited_on,
                            "exit_reason", m.exit_reason,
                        ),
                        aggregate_order_by_tuple(m.entered_on, m.id),
                    )
                ),
                literal_column("'[]'::json"),
            )
        )
        .select_from(m)
        .join(p, p.id == m.pool_id)
        .where(m.uscc == Enterprise.uscc, m.exited_on.is_(None))
        .scalar_subquery()
    )
    e = Enterprise
    scope_conds: dict[str, ColumnElement[bool]] = {
        "all": true(),
        "enterprise": e.uscc == bindparam("who"),
        "commissioner": e.uscc.in_(
            select(CommissionerAssignment.uscc).where(CommissionerAssignment.commissioner_id == bindparam("who"))
        ),
        "territory": e.region_code == any_(bindparam("codes", type_=ARRAY(String))),
    }
    return (
        select(
            e.uscc, e.name, e.region_code, Region.name.label("region_name"), e.industry_code, e.is_manufacturing,
            e.founded_on, e.scale, e.scale_source, e.focus, e.liaison, e.status, e.deregistered_reason, e.version,
            e.created_at, e.updated_at, type_coerce(tiers, JSON).label("current_tiers"),
            type_coerce(pools, JSON).label("pools"),
        )
        .outerjoin(Region, Region.code == e.region_code)
        .where(e.uscc == bindparam("uscc"), scope_conds[scope])
    )


def _view_statement(principal: Principal, uscc: str) -> tuple[Any, dict[str, Any]]:
    """The statement for this caller (same scopes as :func:`scope_cond`) and its parameters."""
    params: dict[str, Any] = {"uscc": uscc.strip().upper(), "today": today()}
    if principal.role == Role.ADMIN:
        return _view_template("all"), params
    if principal.role == Role.ENTERPRISE:
        return _view_template("enterprise"), {**params, "who": principal.uscc or ""}
    if principal.role == Role.COMMISSIONER:
        return _view_template("commissioner"), {**params, "who": principal.sub}
    codes = principal.region_codes()
    if codes is None:
        return _view_template("all"), params
    return _view_template("territory"), {**params, "codes": sorted(codes)}


def aggregate_order_by_tuple(*columns: Any) -> Any:
    from sqlalchemy import tuple_

    return tuple_(*columns)


async def view(session: AsyncSession, principal: Principal, uscc: str) -> dict[str, Any]:
    """One enterprise as shown (``_VIEW_COLUMNS``), in one statement; 404 outside the caller's scope."""
    statement, params = _view_statement(principal, uscc)
    row = (await session.execute(statement, params)).first()
    if row is None:
        raise not_found("企业")
    return dict(zip(_VIEW_COLUMNS, row, strict=True))


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
