"""Enterprises and their annual indicators."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from services.registry import repo
from services.registry.api.schemas import (
    DeregisterIn,
    EnterpriseIn,
    EnterpriseOut,
    EnterprisePage,
    EnterprisePatch,
    IndicatorRevisionOut,
    IndicatorsIn,
    IndicatorsOut,
    PoolMembershipOut,
)
from services.registry.db.models import Enterprise, Pool, PoolMembership, backbone
from services.registry.domain import classify
from services.registry.domain.indicators import SELF_REPORT, effective_values, published, stored_values
from services.registry.events import payloads as ev
from shared.audit import record_audit
from shared.auth import Principal, Role
from shared.deps import PrincipalDep, SessionDep, require_roles
from shared.events.outbox import emit
from shared.indicators import IndicatorSet, consistency_errors
from shared.problems import Problem, field_error

router = APIRouter(prefix="/api/v1/enterprises", tags=["enterprises 企业"])

WriterDep = Annotated[Principal, Depends(require_roles(Role.PROVINCE, Role.CITY, Role.COUNTY))]


def _filters(
    region: Annotated[str | None, Query(description="区划代码(含下级)")] = None,
    industry: Annotated[str | None, Query(description="行业代码前缀 GB/T 4754")] = None,
    tier: Annotated[str | None, Query(description="当前有效称号 id (innovative, srdi, little_giant …)")] = None,
    pool: Annotated[str | None, Query(description="培育库编号或“层级:方向”,如 county:srdi")] = None,
    q: Annotated[str | None, Query(max_length=100, description="企业名称关键字(支持部分中文名称)")] = None,
    status: Annotated[str | None, Query(description="active / deregistered")] = None,
) -> repo.ListFilter:
    if tier is not None and tier not in classify.TIERS:
        raise field_error("tier", f"称号 id 无效,可选: {', '.join(classify.TIERS)}")
    return repo.ListFilter(region=region, industry=industry, tier=tier, pool=pool, q=q, status=status)


FilterDep = Annotated[repo.ListFilter, Depends(_filters)]


@router.post("", status_code=201, response_model=EnterpriseOut, summary="登记企业")
async def register(body: EnterpriseIn, principal: WriterDep, session: SessionDep, response: Response) -> EnterpriseOut:
    async with session.begin():
        regions = await repo.region_index(session)
        row, warnings = repo.normalise_new(body, principal, regions)
        if await repo.existing_usccs(session, [row["uscc"]]):
            raise Problem(
                409, f"统一社会信用代码 {row['uscc']} 已登记", errors=[{"field": "uscc", "message": "已登记"}]
            )
        try:
            await repo.insert_enterprises(session, principal, [row])
        except IntegrityError as exc:
            raise Problem(409, f"统一社会信用代码 {row['uscc']} 已登记") from exc
        ent = await session.get(Enterprise, row["uscc"])
        assert ent is not None
        out = (await repo.present(session, [ent], regions))[0]
    out.warnings = warnings
    response.headers["ETag"] = repo.etag(ent)
    response.headers["Location"] = f"/api/v1/enterprises/{ent.uscc}"
    return out


@router.get("", response_model=EnterprisePage, summary="企业列表(筛选、关键字、游标分页)")
async def list_(
    principal: PrincipalDep,
    session: SessionDep,
    f: FilterDep,
    cursor: Annotated[str | None, Query(description="上一页返回的 next_cursor")] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="每页条数")] = 50,
) -> EnterprisePage:
    async with session.begin():
        page, nxt = await repo.list_enterprises(session, principal, f, cursor, limit)
        items = await repo.present(session, page)
    return EnterprisePage(items=items, next_cursor=nxt)


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


@router.get("/export.xlsx", summary="导出企业列表(XLSX,筛选条件同列表)")
async def export(principal: PrincipalDep, session: SessionDep, f: FilterDep) -> StreamingResponse:
    from openpyxl import Workbook

    repo.list_conditions(principal, f)  # refuse bad filters before the workbook is opened
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("企业")
    ws.append([c for c, _ in EXPORT_COLUMNS])
    async with session.begin():
        regions = await repo.region_index(session)
        cursor: str | None = None
        while True:
            page, cursor = await repo.list_enterprises(session, principal, f, cursor, 1000)
            for e in await repo.present(session, page, regions):
                d: dict[str, Any] = e.model_dump()
                d["tiers"] = "、".join(f"{t.tier}({t.level})" for t in e.current_tiers)
                d["pools"] = "、".join(f"{p.level}:{p.track}" for p in e.pools)
                d["liaison_name"] = (e.liaison or {}).get("name")
                d["liaison_mobile"] = (e.liaison or {}).get("mobile")
                d["scale"] = classify.SCALE_ZH.get(classify.Scale(e.scale)) if e.scale else None
                d["is_manufacturing"] = "是" if e.is_manufacturing else "否"
                ws.append([d.get(k) for _, k in EXPORT_COLUMNS])
            if cursor is None:
                break
    buf = io.BytesIO()
    wb.save(buf)
    buf.seek(0)
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    return StreamingResponse(
        buf,
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="enterprises-{stamp}.xlsx"'},
    )


@router.get("/{uscc}", response_model=EnterpriseOut, summary="企业详情(含当前称号与培育库)")
async def get_one(uscc: str, principal: PrincipalDep, session: SessionDep, response: Response) -> EnterpriseOut:
    async with session.begin():
        ent = await repo.get_visible(session, principal, uscc)
        out = (await repo.present(session, [ent]))[0]
    response.headers["ETag"] = repo.etag(ent)
    return out


def _check_if_match(if_match: str | None, ent: Enterprise) -> None:
    if if_match is None:
        raise Problem(428, "修改企业信息须带 If-Match 请求头(取自 ETag) (If-Match required)")
    tags = [t.strip().removeprefix("W/") for t in if_match.split(",")]
    if "*" not in tags and repo.etag(ent) not in tags:
        raise Problem(
            412,
            f"企业信息已被他人修改(当前版本 {ent.version}),请刷新后重试 (stale ETag)",
            headers={"ETag": repo.etag(ent)},
        )


@router.patch("/{uscc}", response_model=EnterpriseOut, summary="修改企业信息(乐观锁 If-Match)")
async def patch(
    uscc: str,
    body: EnterprisePatch,
    principal: PrincipalDep,
    session: SessionDep,
    response: Response,
    if_match: Annotated[str | None, Header(description="ETag of the version being edited")] = None,
) -> EnterpriseOut:
    changes = body.model_dump(exclude_unset=True)
    if principal.role == Role.ENTERPRISE:
        if set(changes) - {"liaison"}:
            raise Problem(403, "企业用户只能修改服务联络员 (enterprise may only change its liaison)")
    elif not repo.can_write(principal):
        raise Problem(403, "当前角色无权修改企业信息")
    async with session.begin():
        ent = await repo.get_visible(session, principal, uscc, for_update=True)
        _check_if_match(if_match, ent)
        if ent.status != "active":
            raise Problem(409, "企业已注销,不能修改")
        before = repo.enterprise_snapshot(ent)
        if "region_code" in changes:
            if changes["region_code"] is None:
                raise field_error("region_code", "区划不能为空")
            regions = await repo.region_index(session)
            repo.check_unit_region(changes["region_code"], principal, regions)
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
        after = repo.enterprise_snapshot(ent)
        if after != before:
            ent.version += 1
            ent.updated_at = datetime.now(UTC)
            after = repo.enterprise_snapshot(ent)
            await emit(session, backbone, ev.UPDATED, ent.uscc, repo.facts_payload(ent), regioncode=ent.region_code)
            await record_audit(
                session, backbone, principal, "enterprise.update", "enterprise", ent.uscc, before=before, after=after
            )
        await session.flush()
        out = (await repo.present(session, [ent]))[0]
    response.headers["ETag"] = repo.etag(ent)
    return out


@router.post("/{uscc}/deregister", response_model=EnterpriseOut, summary="注销(移出登记)")
async def deregister(
    uscc: str,
    body: DeregisterIn,
    principal: WriterDep,
    session: SessionDep,
    response: Response,
    if_match: Annotated[str | None, Header(description="可选: 乐观锁 ETag")] = None,
) -> EnterpriseOut:
    async with session.begin():
        ent = await repo.get_visible(session, principal, uscc, for_update=True)
        if if_match is not None:
            _check_if_match(if_match, ent)
        if ent.status != "active":
            raise Problem(409, "企业已注销")
        before = repo.enterprise_snapshot(ent)
        ent.status = "deregistered"
        ent.deregistered_reason = body.reason
        ent.deregistered_at = datetime.now(UTC)
        ent.version += 1
        ent.updated_at = datetime.now(UTC)
        await emit(
            session,
            backbone,
            ev.DEREGISTERED,
            ent.uscc,
            ev.Deregistered(uscc=ent.uscc, region_code=ent.region_code, reason=body.reason, version=ent.version),
            regioncode=ent.region_code,
        )
        # leaving the registry ends every pool membership
        rows = (
            await session.execute(
                select(PoolMembership, Pool)
                .join(Pool, Pool.id == PoolMembership.pool_id)
                .where(PoolMembership.uscc == ent.uscc, PoolMembership.exited_on.is_(None))
            )
        ).all()
        for m, p in rows:
            m.exited_on = repo.today()
            m.exit_reason = f"企业注销: {body.reason}"
            m.exited_by = principal.sub
            await repo.pool_move_event(session, ent, p, m.year, m.exit_reason, ev.POOL_EXITED)
        await record_audit(
            session,
            backbone,
            principal,
            "enterprise.deregister",
            "enterprise",
            ent.uscc,
            before=before,
            after=repo.enterprise_snapshot(ent),
        )
        await session.flush()
        out = (await repo.present(session, [ent]))[0]
    response.headers["ETag"] = repo.etag(ent)
    return out


@router.get("/{uscc}/pools", response_model=list[PoolMembershipOut], summary="培育库出入库历史")
async def pool_history(uscc: str, principal: PrincipalDep, session: SessionDep) -> list[PoolMembershipOut]:
    async with session.begin():
        ent = await repo.get_visible(session, principal, uscc)
        return (await repo.memberships(session, [ent.uscc], active_only=False))[ent.uscc]


# ---------------------------------------------------------------- indicators


def _check_year(year: int) -> None:
    if not 2000 <= year <= datetime.now(UTC).year + 1:
        raise field_error("year", "年度超出范围 (2000 至明年)")


def resolve_source(principal: Principal, requested: str | None) -> str:
    if principal.role == Role.AGENCY:
        if requested is None:
            return f"agency:{principal.sub}"
        if not requested.startswith("agency:") or len(requested) <= len("agency:"):
            raise field_error("source", "部门数据来源须为 agency:<机构名>")
        return requested
    if requested not in (None, SELF_REPORT):
        if requested.startswith("agency:"):
            raise Problem(
                403,
                "只有部门(agency)角色可以提交 agency 来源的数据",
                errors=[{"field": "source", "message": "无权使用 agency 来源"}],
            )
        raise field_error("source", "数据来源须为 self_report 或 agency:<机构名>")
    return SELF_REPORT


@router.put("/{uscc}/indicators/{year}", response_model=IndicatorsOut, summary="报送年度指标(每次报送保留修订)")
async def put_indicators(
    uscc: str, year: int, body: IndicatorsIn, principal: PrincipalDep, session: SessionDep
) -> IndicatorsOut:
    _check_year(year)
    if principal.role not in (Role.ENTERPRISE, Role.AGENCY) and not repo.can_write(principal):
        raise Problem(403, "当前角色无权报送指标")
    source = resolve_source(principal, body.source)
    errors = consistency_errors(body.indicators)
    if errors:
        raise Problem(
            422,
            "; ".join(f"indicators.{f}: {m}" for f, m in errors),
            errors=[{"field": f"indicators.{f}", "message": m} for f, m in errors],
        )
    async with session.begin():
        ent = await repo.get_visible(session, principal, uscc, for_update=True)
        if ent.status != "active":
            raise Problem(409, "企业已注销,不能报送指标")
        values = stored_values(body.indicators)
        [(revision, effective, at)] = await repo.report_indicators(
            session, principal, principal.sub, [repo.IndicatorReport(ent, year, source, values)]
        )
        revs = await repo.indicator_revisions(session, ent.uscc, year)
    return IndicatorsOut(
        uscc=ent.uscc,
        year=year,
        revision=revision,
        reported_at=at,
        sources=sorted({r.source for r in revs}),
        indicators=published(IndicatorSet.model_validate(effective)),
    )


def _effective_out(uscc: str, year: int, revs: list[Any], history: bool) -> IndicatorsOut:
    eff = effective_values([(r.source, r.values) for r in revs])
    return IndicatorsOut(
        uscc=uscc,
        year=year,
        revision=revs[-1].revision,
        reported_at=revs[-1].reported_at,
        sources=sorted({r.source for r in revs}),
        indicators=published(IndicatorSet.model_validate(eff)),
        history=[
            IndicatorRevisionOut(
                revision=r.revision, source=r.source, actor=r.actor, reported_at=r.reported_at, values=r.values
            )
            for r in revs
        ]
        if history
        else None,
    )


@router.get("/{uscc}/indicators", response_model=list[IndicatorsOut], summary="各年度有效指标(最新)")
async def list_indicators(uscc: str, principal: PrincipalDep, session: SessionDep) -> list[IndicatorsOut]:
    async with session.begin():
        ent = await repo.get_visible(session, principal, uscc)
        revs = await repo.indicator_revisions(session, ent.uscc)
    by_year: dict[int, list[Any]] = {}
    for r in revs:
        by_year.setdefault(r.year, []).append(r)
    return [_effective_out(ent.uscc, y, rs, False) for y, rs in sorted(by_year.items(), reverse=True)]


@router.get("/{uscc}/indicators/{year}", response_model=IndicatorsOut, summary="某年度有效指标(可含修订历史)")
async def get_indicators(
    uscc: str,
    year: int,
    principal: PrincipalDep,
    session: SessionDep,
    history: Annotated[bool, Query(description="是否返回全部修订")] = False,
) -> IndicatorsOut:
    _check_year(year)
    async with session.begin():
        ent = await repo.get_visible(session, principal, uscc)
        revs = await repo.indicator_revisions(session, ent.uscc, year)
    if not revs:
        raise Problem(404, f"{year} 年度尚无指标数据 (no indicators for this year)")
    return _effective_out(ent.uscc, year, revs, history)
