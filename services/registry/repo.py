"""Repository: the registry's reads and writes (routes, import jobs and demo data all go through here).

Nothing here commits: the caller (route, consumer, worker) owns the transaction.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from services.registry.api.schemas import (
    EnterpriseIn,
    EnterpriseOut,
    PoolMembershipOut,
    TierOut,
)
from services.registry.db.models import (
    CommissionerAssignment,
    Enterprise,
    IndicatorRevision,
    Pool,
    PoolMembership,
    Recognition,
    Region,
    backbone,
    table_of,
)
from services.registry.domain import classify
from services.registry.domain.indicators import effective_values, merged_consistency_errors, published
from services.registry.domain.uscc import USCCError, validate_uscc
from services.registry.events import payloads as ev
from services.registry.events.bulk import emit_many
from shared.auth import Principal, Role, region_level
from shared.context import event_id_var, request_id_var
from shared.events.envelope import dumps
from shared.events.outbox import emit
from shared.indicators import IndicatorSet
from shared.problems import Problem, field_error, not_found

POOL_NAMES = {
    "county": "县(市、区)级",
    "city": "市级",
    "province": "省级",
}
TRACK_ZH = {
    "innovative": "创新型中小企业",
    "srdi": "专精特新中小企业",
    "little_giant": "专精特新“小巨人”企业",
    "hidden_champion": "隐形冠军企业",
    "single_champion": "单项冠军企业",
    "single_champion_product": "单项冠军产品",
}


def today() -> date:
    return datetime.now(UTC).date()


# ---------------------------------------------------------------- regions and jurisdiction


def region_cond(column: Any, code: str) -> ColumnElement[bool]:
    """``column`` lies within ``code`` (province → 2-digit prefix, city → 4-digit prefix, county → equal)."""
    level = region_level(code)
    if level == "province":
        return column.like(code[:2] + "%")  # type: ignore[no-any-return]
    if level == "city":
        return column.like(code[:4] + "%")  # type: ignore[no-any-return]
    return column == code  # type: ignore[no-any-return]


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


def can_write(principal: Principal) -> bool:
    return principal.is_official or principal.role == Role.ADMIN


@dataclass
class RegionIndex:
    regions: dict[str, Region]

    @property
    def codes(self) -> set[str]:
        """Every code incl. retired ones, excluding project zone codes (not GB/T 2260)."""
        return {c for c, r in self.regions.items() if not r.is_zone}

    def name(self, code: str) -> str | None:
        r = self.regions.get(code)
        return r.name if r else None


async def region_index(session: AsyncSession) -> RegionIndex:
    rows = (await session.scalars(select(Region))).all()
    return RegionIndex({r.code: r for r in rows})


def check_unit_region(code: str, principal: Principal, regions: RegionIndex, field: str = "region_code") -> None:
    """An enterprise's region: an active county-level unit or zone inside the caller's jurisdiction."""
    r = regions.regions.get(code)
    if r is None:
        raise field_error(field, f"区划代码“{code}”不存在")
    if r.status != "active":
        raise field_error(field, f"区划代码“{code}”({r.name})已撤销,请使用{r.successor_code or '现行代码'}")
    if r.level != "county":
        raise field_error(field, f"区划代码“{code}”({r.name})不是县级单位或功能区")
    if not principal.covers_region(code):
        raise Problem(
            403,
            f"{field}: 区划“{code}”不在您的管辖范围内 (outside your jurisdiction)",
            errors=[{"field": field, "message": "区划不在您的管辖范围内"}],
        )


# ---------------------------------------------------------------- enterprises


def normalise_new(data: EnterpriseIn, principal: Principal, regions: RegionIndex) -> tuple[dict[str, Any], list[str]]:
    """Validate a new enterprise; returns (row for the enterprises table, warnings) or raises Problem."""
    try:
        result = validate_uscc(data.uscc, regions.codes)
    except USCCError as exc:
        raise field_error("uscc", exc.message, position=exc.position) from exc
    if err := classify.industry_code_error(data.industry_code):
        raise field_error("industry_code", err)
    check_unit_region(data.region_code, principal, regions)
    if data.founded_on and data.founded_on > today():
        raise field_error("founded_on", "成立日期不能晚于今天")
    warnings = list(result.warnings)
    scale: str | None = data.scale.value if data.scale else None
    scale_source = "given" if scale else None
    if scale is None:
        derived = classify.derive_scale(data.industry_code, data.employees, data.operating_revenue)
        if derived is not None:
            scale, scale_source = derived.value, "derived"
        elif data.employees is not None or data.operating_revenue is not None:
            warnings.append("非工业企业或数据不全,未推算企业规模 (scale not derived)")
    row = {
        "uscc": result.code,
        "name": data.name.strip(),
        "region_code": data.region_code,
        "industry_code": data.industry_code,
        "is_manufacturing": classify.is_manufacturing(data.industry_code),
        "founded_on": data.founded_on,
        "scale": scale,
        "scale_source": scale_source,
        "focus": data.focus.model_dump(mode="json"),
        "liaison": data.liaison.model_dump(mode="json") if data.liaison else None,
        "status": "active",
        "version": 1,
    }
    return row, warnings


def facts_payload(e: Enterprise | dict[str, Any]) -> ev.EnterpriseFacts:
    def get(key: str) -> Any:
        return _get(e, key)

    liaison = get("liaison")
    return ev.EnterpriseFacts(
        uscc=get("uscc"),
        name=get("name"),
        region_code=get("region_code"),
        industry_code=get("industry_code"),
        is_manufacturing=get("is_manufacturing"),
        founded_on=get("founded_on"),
        scale=get("scale"),
        status=get("status"),
        focus=get("focus") or {},
        liaison=ev.Liaison(**liaison) if liaison else None,
        version=get("version"),
    )


def _jsonable(value: Any) -> Any:
    return None if value is None else json.loads(dumps(value))


async def audit_many(
    session: AsyncSession,
    actor: Principal | None,
    action: str,
    object_type: str,
    items: Sequence[tuple[str, Any, Any]],
) -> None:
    """One audit row per changed object: items = (object_id, before, after)."""
    if not items:
        return
    base = {
        "actor": actor.sub if actor else "system:registry",
        "role": actor.role.value if actor else "system",
        "region": actor.region if actor else None,
        "action": action,
        "object_type": object_type,
        "request_id": request_id_var.get(),
        "event_id": event_id_var.get(),
    }
    rows = [{**base, "object_id": oid, "before": _jsonable(b), "after": _jsonable(a)} for oid, b, a in items]
    for i in range(0, len(rows), 2000):
        await session.execute(backbone.audit_log.insert(), rows[i : i + 2000])


async def insert_enterprises(session: AsyncSession, actor: Principal | None, rows: list[dict[str, Any]]) -> None:
    """Insert validated rows, their registered events and audit rows (batched)."""
    if not rows:
        return
    for i in range(0, len(rows), 2000):
        await session.execute(table_of(Enterprise).insert(), rows[i : i + 2000])
    await emit_many(session, backbone, [(ev.REGISTERED, r["uscc"], facts_payload(r), r["region_code"]) for r in rows])
    await audit_many(session, actor, "enterprise.register", "enterprise", [(r["uscc"], None, r) for r in rows])


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


def enterprise_snapshot(e: Enterprise) -> dict[str, Any]:
    return {c.name: getattr(e, c.name) for c in table_of(Enterprise).columns}


async def current_tiers(session: AsyncSession, usccs: Sequence[str]) -> dict[str, list[TierOut]]:
    out: dict[str, list[TierOut]] = {u: [] for u in usccs}
    if not usccs:
        return out
    d = today()
    rows = (
        await session.scalars(
            select(Recognition)
            .where(
                Recognition.uscc.in_(usccs),
                Recognition.status == "valid",
                or_(Recognition.valid_to.is_(None), Recognition.valid_to >= d),
            )
            .order_by(Recognition.valid_from)
        )
    ).all()
    for r in rows:
        out[r.uscc].append(
            TierOut(
                recognition_id=r.recognition_id,
                tier=r.tier,
                level=r.level,
                valid_from=r.valid_from,
                valid_to=r.valid_to,
            )
        )
    return out


async def memberships(
    session: AsyncSession, usccs: Sequence[str], *, active_only: bool = True
) -> dict[str, list[PoolMembershipOut]]:
    out: dict[str, list[PoolMembershipOut]] = {u: [] for u in usccs}
    if not usccs:
        return out
    stmt = (
        select(PoolMembership, Pool)
        .join(Pool, Pool.id == PoolMembership.pool_id)
        .where(PoolMembership.uscc.in_(usccs))
        .order_by(PoolMembership.entered_on, PoolMembership.id)
    )
    if active_only:
        stmt = stmt.where(PoolMembership.exited_on.is_(None))
    for m, p in (await session.execute(stmt)).all():
        out[m.uscc].append(
            PoolMembershipOut(
                pool_id=p.id,
                level=p.level,
                pool_region=p.region_code,
                track=p.track,
                year=m.year,
                basis=m.basis,
                entered_on=m.entered_on,
                exited_on=m.exited_on,
                exit_reason=m.exit_reason,
            )
        )
    return out


async def present(
    session: AsyncSession, ents: Sequence[Enterprise], regions: RegionIndex | None = None
) -> list[EnterpriseOut]:
    usccs = [e.uscc for e in ents]
    tiers = await current_tiers(session, usccs)
    pools = await memberships(session, usccs)
    if regions is None:
        codes = {e.region_code for e in ents}
        rows = (await session.scalars(select(Region).where(Region.code.in_(codes)))).all() if codes else []
        regions = RegionIndex({r.code: r for r in rows})
    return [
        EnterpriseOut(
            uscc=e.uscc,
            name=e.name,
            region_code=e.region_code,
            region_name=regions.name(e.region_code),
            industry_code=e.industry_code,
            is_manufacturing=e.is_manufacturing,
            founded_on=e.founded_on,
            scale=e.scale,
            scale_source=e.scale_source,
            focus=e.focus or {},
            liaison=e.liaison,
            status=e.status,
            deregistered_reason=e.deregistered_reason,
            version=e.version,
            created_at=e.created_at,
            updated_at=e.updated_at,
            current_tiers=tiers[e.uscc],
            pools=pools[e.uscc],
        )
        for e in ents
    ]


def etag(e: Enterprise) -> str:
    return f'"v{e.version}"'


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
        conds.append(Enterprise.industry_code.like(f.industry + "%"))
    if f.status:
        conds.append(Enterprise.status == f.status)
    if f.q:
        q = f.q.strip()
        conds.append(or_(Enterprise.name.ilike(f"%{_escape_like(q)}%", escape="\\"), Enterprise.uscc == q.upper()))
    if f.tier:
        d = today()
        conds.append(
            select(Recognition.recognition_id)
            .where(
                Recognition.uscc == Enterprise.uscc,
                Recognition.tier == f.tier,
                Recognition.status == "valid",
                or_(Recognition.valid_to.is_(None), Recognition.valid_to >= d),
            )
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


# ---------------------------------------------------------------- indicators


@dataclass
class IndicatorReport:
    ent: Enterprise | dict[str, Any]
    year: int
    source: str
    values: dict[str, Any]


def _get(e: Enterprise | dict[str, Any], key: str) -> Any:
    return e[key] if isinstance(e, dict) else getattr(e, key)


def _set(e: Enterprise | dict[str, Any], **values: Any) -> None:
    """Reflect a change already written by an UPDATE (ORM objects are not marked dirty)."""
    for key, value in values.items():
        if isinstance(e, dict):
            e[key] = value
        else:
            set_committed_value(e, key, value)


class InconsistentIndicators(Problem):
    """422: merged into the effective set (agency precedence), a revision would make it inconsistent."""

    def __init__(self, errors: list[tuple[str, str]], index: int = 0) -> None:
        super().__init__(
            422,
            "; ".join(f"indicators.{f}: {m}" for f, m in errors),
            errors=[{"field": f"indicators.{f}", "message": m} for f, m in errors],
        )
        self.pairs = errors
        self.index = index


Prior = dict[tuple[str, int], list[tuple[str, dict[str, Any]]]]


async def _prior_revisions(session: AsyncSession, reports: Sequence[IndicatorReport]) -> tuple[Prior, dict[str, int]]:
    """Stored revisions (source, values) per (uscc, year) of the reports, in revision order; latest year per uscc."""
    keys = {(_get(r.ent, "uscc"), r.year) for r in reports}
    usccs = list({k[0] for k in keys})
    prior: Prior = {k: [] for k in keys}
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


async def merged_conflicts(
    session: AsyncSession, reports: Sequence[IndicatorReport]
) -> dict[int, list[tuple[str, str]]]:
    """Which reports (by index) would make their effective set inconsistent, applied in order (a refused report
    is left out of the history the following ones merge with). Used to refuse single import rows up front."""
    if not reports:
        return {}
    prior, _ = await _prior_revisions(session, reports)
    out: dict[int, list[tuple[str, str]]] = {}
    for i, r in enumerate(reports):
        hist = prior[(_get(r.ent, "uscc"), r.year)]
        before = effective_values(hist) if hist else None
        after = effective_values([*hist, (r.source, r.values)])
        if errors := merged_consistency_errors(before, after, r.values):
            out[i] = errors
        else:
            hist.append((r.source, r.values))
    return out


async def report_indicators(
    session: AsyncSession, actor: Principal | None, actor_sub: str, reports: Sequence[IndicatorReport]
) -> list[tuple[int, dict[str, Any], datetime]]:
    """Store one revision per report and emit indicators.reported with the effective set.

    Returns (revision, effective values, reported_at) per report. Raises InconsistentIndicators (422) when a
    report would make its merged effective set inconsistent. Callers serialise per enterprise
    (row lock on the enterprise) for single writes; imports run one job at a time.
    """
    if not reports:
        return []
    prior, latest_year = await _prior_revisions(session, reports)
    for r in reports:
        u = _get(r.ent, "uscc")
        latest_year[u] = max(latest_year.get(u, r.year), r.year)
    now = datetime.now(UTC)
    rescaled: dict[str, tuple[Enterprise | dict[str, Any], str]] = {}
    inserts: list[dict[str, Any]] = []
    events: list[tuple[str, str, Any, str | None]] = []
    audits: list[tuple[str, Any, Any]] = []
    results: list[tuple[int, dict[str, Any], datetime]] = []
    for r in reports:
        uscc = _get(r.ent, "uscc")
        hist = prior[(uscc, r.year)]
        before = effective_values(hist) if hist else None
        hist.append((r.source, r.values))
        revision = len(hist)
        effective = effective_values(hist)
        if errors := merged_consistency_errors(before, effective, r.values):
            raise InconsistentIndicators(errors, index=len(results))
        eff_set = IndicatorSet.model_validate(effective)
        full = published(eff_set)
        # scale not given by an official: derived from the latest year's effective figures (300号)
        if _get(r.ent, "scale_source") != "given" and r.year == latest_year[uscc]:
            derived = classify.derive_scale(_get(r.ent, "industry_code"), eff_set.employees, eff_set.operating_revenue)
            if derived is not None and derived.value != _get(r.ent, "scale"):
                rescaled[uscc] = (r.ent, derived.value)
                _set(r.ent, scale=derived.value, scale_source="derived")
        inserts.append(
            {
                "uscc": uscc,
                "year": r.year,
                "revision": revision,
                "source": r.source,
                "actor": actor_sub,
                "values": r.values,
                "reported_at": now,
            }
        )
        events.append(
            (
                ev.INDICATORS_REPORTED,
                uscc,
                ev.IndicatorsReported(
                    uscc=uscc,
                    region_code=_get(r.ent, "region_code"),
                    year=r.year,
                    revision=revision,
                    source=r.source,
                    reported_at=now,
                    enterprise=ev.EnterpriseBrief(
                        name=_get(r.ent, "name"),
                        founded_on=_get(r.ent, "founded_on"),
                        industry_code=_get(r.ent, "industry_code"),
                        is_manufacturing=_get(r.ent, "is_manufacturing"),
                        scale=_get(r.ent, "scale"),
                    ),
                    indicators=full,
                ),
                _get(r.ent, "region_code"),
            )
        )
        audits.append((f"{uscc}/{r.year}/{revision}", None, {"source": r.source, "values": r.values}))
        results.append((revision, effective, now))
    for uscc, (ent, scale) in rescaled.items():
        version = await session.scalar(
            update(Enterprise)
            .where(Enterprise.uscc == uscc)
            .values(scale=scale, scale_source="derived", version=Enterprise.version + 1, updated_at=func.now())
            .returning(Enterprise.version)
        )
        if version is None:  # not stored yet (demo rows are inserted with their derived scale)
            continue
        _set(ent, version=version)
        events.append((ev.UPDATED, uscc, facts_payload(ent), _get(ent, "region_code")))
        audits.append((uscc, None, {"scale": scale, "scale_source": "derived", "version": version}))
    for i in range(0, len(inserts), 2000):
        await session.execute(table_of(IndicatorRevision).insert(), inserts[i : i + 2000])
    await emit_many(session, backbone, events)
    await audit_many(session, actor, "indicators.report", "indicators", audits)
    return results


async def indicator_revisions(session: AsyncSession, uscc: str, year: int | None = None) -> list[IndicatorRevision]:
    stmt = select(IndicatorRevision).where(IndicatorRevision.uscc == uscc)
    if year is not None:
        stmt = stmt.where(IndicatorRevision.year == year)
    return list((await session.scalars(stmt.order_by(IndicatorRevision.year, IndicatorRevision.revision))).all())


# ---------------------------------------------------------------- pools


async def get_or_create_pool(session: AsyncSession, level: str, region: str, track: str) -> Pool:
    from sqlalchemy.dialects.postgresql import insert

    name = f"{POOL_NAMES[level]}{TRACK_ZH.get(track, track)}培育库"
    await session.execute(
        insert(Pool).values(level=level, region_code=region, track=track, name=name).on_conflict_do_nothing()
    )
    pool = (
        await session.scalars(select(Pool).where(Pool.level == level, Pool.region_code == region, Pool.track == track))
    ).one()
    return pool


def check_pool_region(level: str, region: str, regions: RegionIndex) -> None:
    r = regions.regions.get(region)
    if r is None or r.status != "active":
        raise not_found("区划")
    if r.level != level:
        raise field_error("level", f"培育库层级“{level}”与区划“{region}”({r.name},{r.level})不符")


def pool_moved(uscc: str, region: str, pool: Pool, year: int, reason: str | None) -> dict[str, Any]:
    """The payload of ``pool.entered`` / ``pool.exited`` for an enterprise (its USCC and region) and a pool: the
    JSON object of ``ev.PoolMoved``, its fields in its order (built directly: a re-evaluation's batch handler
    writes tens of thousands, and validating a model per entry cost more than the rest of its row; a test holds
    it to the model)."""
    return {"uscc": uscc, "region_code": region, "pool_id": pool.id, "level": pool.level,
            "pool_region": pool.region_code, "track": pool.track, "year": year, "reason": reason}


async def pool_move_event(
    session: AsyncSession, ent: Enterprise, pool: Pool, year: int, reason: str | None, event_type: str
) -> None:
    await emit(
        session, backbone, event_type, ent.uscc, pool_moved(ent.uscc, ent.region_code, pool, year, reason),
        regioncode=ent.region_code,
    )


def year_end(year: int) -> date:
    return date(year, 12, 31)
