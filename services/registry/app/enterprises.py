"""Enterprise use cases: register, list and show, update, deregister, export rows.

Each function is one transaction's worth of work in the caller's session; nothing here commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.app import pools as pool_cases
from services.registry.app.moves import follow_move
from services.registry.db import enterprises as repo
from services.registry.db.models import Enterprise, backbone
from services.registry.db.pools import pool_name
from services.registry.db.regions import RegionIndex, region_index
from services.registry.domain import classify
from services.registry.domain.commands import EnterpriseIn, EnterprisePatch
from services.registry.domain.dates import today
from services.registry.domain.uscc import USCCError, validate_uscc
from services.registry.events import contracts as ev
from shared.audit import audit_row, record_audit, record_audits
from shared.auth import Principal, Role
from shared.db_reads import ReadPool
from shared.events.outbox import emit, emit_many, outbox_row
from shared.problems import Problem, field_error
from shared.tiers import tier_label

Event = tuple[str, str, Any, str | None]  # type, subject USCC, payload, regioncode


async def publish(session: AsyncSession, events: Sequence[Event]) -> None:
    """Add the events to the outbox in order (one COPY)."""
    await emit_many(session, backbone, [outbox_row(backbone, t, s, d, regioncode=r) for t, s, d, r in events])


def can_write(principal: Principal) -> bool:
    return principal.is_official or principal.role == Role.ADMIN


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


def authority_mismatch(division: str, region_code: str, regions: RegionIndex) -> str | None:
    """A warning when the USCC's registration authority (positions 3–8) is not the enterprise's region: neither
    the county itself, a retired code it succeeded, nor its city's or the province's bureau. Programme zones have
    project codes (their enterprises are registered by the county or city), so they are not compared."""
    region = regions.regions.get(region_code)
    if region is None or region.is_zone or division == region_code:
        return None
    authority = regions.regions.get(division)
    if authority is not None and authority.successor_code == region_code:
        return None
    if division in (region.parent_code, region_code[:2] + "0000"):
        return None
    return (
        f"统一社会信用代码第3–8位登记管理机关行政区划码“{division}”与所属区划“{region_code}”"
        f"({region.name})不一致,请核对 (registration authority differs from region_code)"
    )


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
    if mismatch := authority_mismatch(result.division, data.region_code, regions):
        warnings.append(mismatch)
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


def get_field(e: Enterprise | dict[str, Any], key: str) -> Any:
    return e[key] if isinstance(e, dict) else getattr(e, key)


def facts_payload(e: Enterprise | dict[str, Any]) -> ev.EnterpriseFacts:
    def get(key: str) -> Any:
        return get_field(e, key)

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


async def insert_enterprises(session: AsyncSession, actor: Principal | None, rows: list[dict[str, Any]]) -> None:
    """Insert validated rows, their registered events and audit rows (batched)."""
    if not rows:
        return
    await repo.insert_rows(session, rows)
    await publish(session, [(ev.REGISTERED, r["uscc"], facts_payload(r), r["region_code"]) for r in rows])
    await record_audits(
        session,
        backbone,
        [audit_row(backbone, actor, "enterprise.register", "enterprise", r["uscc"], after=r) for r in rows],
    )


def etag(e: Enterprise) -> str:
    return f'"v{e.version}"'


def check_if_match(if_match: str | None, ent: Enterprise) -> None:
    if if_match is None:
        raise Problem(428, "修改企业信息须带 If-Match 请求头(取自 ETag) (If-Match required)")
    tags = [t.strip().removeprefix("W/") for t in if_match.split(",")]
    if "*" not in tags and etag(ent) not in tags:
        raise Problem(
            412,
            f"企业信息已被他人修改(当前版本 {ent.version}),请刷新后重试 (stale ETag)",
            headers={"ETag": etag(ent)},
        )


# ---------------------------------------------------------------- views


async def present(
    session: AsyncSession, ents: Sequence[Enterprise], regions: RegionIndex | None = None
) -> list[dict[str, Any]]:
    """The enterprises as shown: their fields, region name, current tiers and pools."""
    usccs = [e.uscc for e in ents]
    tiers = await repo.current_tiers(session, usccs)
    pools = await repo.memberships(session, usccs)
    if regions is None:
        regions = await region_index(session, {e.region_code for e in ents})
    return [
        {
            "uscc": e.uscc,
            "name": e.name,
            "region_code": e.region_code,
            "region_name": regions.name(e.region_code),
            "industry_code": e.industry_code,
            "is_manufacturing": e.is_manufacturing,
            "founded_on": e.founded_on,
            "scale": e.scale,
            "scale_source": e.scale_source,
            "focus": e.focus or {},
            "liaison": e.liaison,
            "status": e.status,
            "deregistered_reason": e.deregistered_reason,
            "version": e.version,
            "created_at": e.created_at,
            "updated_at": e.updated_at,
            "current_tiers": tiers[e.uscc],
            "pools": pools[e.uscc],
        }
        for e in ents
    ]


# ---------------------------------------------------------------- use cases


async def register(session: AsyncSession, principal: Principal, data: EnterpriseIn) -> tuple[dict[str, Any], str]:
    """Register one enterprise; (its view with warnings, ETag)."""
    regions = await region_index(session)
    row, warnings = normalise_new(data, principal, regions)
    if await repo.existing_usccs(session, [row["uscc"]]):
        raise Problem(409, f"统一社会信用代码 {row['uscc']} 已登记", errors=[{"field": "uscc", "message": "已登记"}])
    try:
        await insert_enterprises(session, principal, [row])
    except IntegrityError as exc:
        raise Problem(409, f"统一社会信用代码 {row['uscc']} 已登记") from exc
    ent = await repo.get(session, row["uscc"])
    assert ent is not None
    view = (await present(session, [ent], regions))[0]
    view["warnings"] = warnings
    return view, etag(ent)


async def list_page(
    session: AsyncSession, principal: Principal, f: repo.ListFilter, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    page, nxt = await repo.list_enterprises(session, principal, f, cursor, limit)
    return await present(session, page), nxt


async def show(pool: ReadPool, principal: Principal, uscc: str) -> tuple[str, str]:
    """One enterprise as shown (EnterpriseOut's JSON, written by PostgreSQL in one statement without a session:
    the hot read) and its ETag."""
    body, version = await repo.view_json(pool, principal, uscc)
    return body, f'"v{version}"'


async def update(
    session: AsyncSession, principal: Principal, uscc: str, body: EnterprisePatch, if_match: str | None
) -> tuple[dict[str, Any], str]:
    changes = body.model_dump(exclude_unset=True)
    if principal.role == Role.ENTERPRISE:
        if set(changes) - {"liaison"}:
            raise Problem(403, "企业用户只能修改服务联络员 (enterprise may only change its liaison)")
    elif not can_write(principal):
        raise Problem(403, "当前角色无权修改企业信息")
    ent = await repo.get_visible(session, principal, uscc, for_update=True)
    check_if_match(if_match, ent)
    if ent.status != "active":
        raise Problem(409, "企业已注销,不能修改")
    before = repo.snapshot(ent)
    if "region_code" in changes:
        if changes["region_code"] is None:
            raise field_error("region_code", "区划不能为空")
        check_unit_region(changes["region_code"], principal, await region_index(session))
        ent.region_code = changes["region_code"]
    if "name" in changes:
        if not changes["name"]:
            raise field_error("name", "企业名称不能为空")
        ent.name = changes["name"].strip()
    if "industry_code" in changes:
        code = changes["industry_code"]
        if code is None or (err := classify.industry_code_error(code)):
            raise field_error("industry_code", "行业代码无效" if code is None else str(err))
        ent.industry_code = code
        ent.is_manufacturing = classify.is_manufacturing(code)
    if "founded_on" in changes:
        ent.founded_on = changes["founded_on"]
    if "scale" in changes:
        ent.scale = changes["scale"]
        ent.scale_source = "given" if changes["scale"] else None
    if "focus" in changes:
        ent.focus = body.focus.model_dump(mode="json") if body.focus else {}
    if "liaison" in changes:
        ent.liaison = body.liaison.model_dump(mode="json") if body.liaison else None
    after = repo.snapshot(ent)
    if after != before:
        ent.version += 1
        ent.updated_at = datetime.now(UTC)
        after = repo.snapshot(ent)
        await emit(session, backbone, ev.UPDATED, ent.uscc, facts_payload(ent), regioncode=ent.region_code)
        await record_audit(
            session, backbone, principal, "enterprise.update", "enterprise", ent.uscc, before=before, after=after
        )
        if ent.region_code != before["region_code"]:  # moved: pools, commissioner, titles follow (app/moves.py)
            await follow_move(session, principal, ent, before["region_code"], today(), principal.sub)
    await session.flush()
    return (await present(session, [ent]))[0], etag(ent)


async def deregister(
    session: AsyncSession, principal: Principal, uscc: str, reason: str, if_match: str | None
) -> tuple[dict[str, Any], str]:
    ent = await repo.get_visible(session, principal, uscc, for_update=True)
    if if_match is not None:
        check_if_match(if_match, ent)
    if ent.status != "active":
        raise Problem(409, "企业已注销")
    before = repo.snapshot(ent)
    ent.status = "deregistered"
    ent.deregistered_reason = reason
    ent.deregistered_at = datetime.now(UTC)
    ent.version += 1
    ent.updated_at = datetime.now(UTC)
    await emit(
        session,
        backbone,
        ev.DEREGISTERED,
        ent.uscc,
        ev.Deregistered(uscc=ent.uscc, region_code=ent.region_code, reason=reason, version=ent.version),
        regioncode=ent.region_code,
    )
    # leaving the registry ends every pool membership
    for m, p in await repo.active_memberships_for_update(session, ent.uscc):
        m.exited_on = today()
        m.exit_reason = f"企业注销: {reason}"
        m.exited_by = principal.sub
        await pool_cases.pool_move_event(session, ent, p, m.year, m.exit_reason, ev.POOL_EXITED)
    await record_audit(
        session,
        backbone,
        principal,
        "enterprise.deregister",
        "enterprise",
        ent.uscc,
        before=before,
        after=repo.snapshot(ent),
    )
    await session.flush()
    return (await present(session, [ent]))[0], etag(ent)


async def pool_history(session: AsyncSession, principal: Principal, uscc: str) -> list[dict[str, Any]]:
    ent = await repo.get_visible(session, principal, uscc)
    return (await repo.memberships(session, [ent.uscc], active_only=False))[ent.uscc]


EXPORT_COLUMNS = [
    ("统一社会信用代码", "uscc"),
    ("企业名称", "name"),
    ("所属区划", "region_code"),
    ("区划名称", "region_name"),
    ("行业代码", "industry_code"),
    ("是否制造业", "is_manufacturing"),
    ("成立日期", "founded_on"),
    ("企业规模", "scale"),
    ("状态", "status"),
    ("当前称号", "tiers"),
    ("所在培育库", "pools"),
    ("联络员姓名", "liaison_name"),
    ("联络员手机", "liaison_mobile"),
]


async def export_rows(session: AsyncSession, principal: Principal, f: repo.ListFilter) -> list[list[Any]]:
    """The export sheet's rows, header first (every page of the filtered list)."""
    out: list[list[Any]] = [[c for c, _ in EXPORT_COLUMNS]]
    regions = await region_index(session)
    cursor: str | None = None
    while True:
        page, cursor = await repo.list_enterprises(session, principal, f, cursor, 1000)
        for d in await present(session, page, regions):
            liaison = d["liaison"] or {}
            d["tiers"] = "、".join(tier_label(t["tier"], t["level"]) for t in d["current_tiers"])
            d["pools"] = "、".join(pool_name(p["level"], p["track"]) for p in d["pools"])
            d["status"] = classify.STATUS_ZH.get(d["status"], d["status"])
            d["liaison_name"] = liaison.get("name")
            d["liaison_mobile"] = liaison.get("mobile")
            d["scale"] = classify.SCALE_ZH.get(classify.Scale(d["scale"])) if d["scale"] else None
            d["is_manufacturing"] = "是" if d["is_manufacturing"] else "否"
            out.append([d.get(k) for _, k in EXPORT_COLUMNS])
        if cursor is None:
            return out
