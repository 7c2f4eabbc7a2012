"""/api/v1/monitor/...: target attainment, funnel, money vs budget, recognitions, year-on-year, forecast,
commissioner loads, the region tree and the enterprise view — each within the caller's jurisdiction."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from services.monitor.api.deps import ReaderDep, SessionDep, YearQuery, in_jurisdiction
from services.monitor.api.schemas import (
    Attainment,
    CommissionerLoad,
    EnterpriseView,
    Forecast,
    Funnel,
    Money,
    Notices,
    Recognitions,
    RegionTreeView,
    YearOnYear,
    feed_event,
)
from services.monitor.app import enterprises, reporting
from shared.problems import field_error, not_found
from shared.tiers import TIERS

router = APIRouter(prefix="/api/v1/monitor", tags=["monitor 监测"])

RegionQuery = Annotated[str | None, Query(description="区划代码 (默认令牌所属区划;须在辖区内)")]
TierQuery = Annotated[str | None, Query(description="梯度 id (innovative, srdi, little_giant …)")]


def _tier(tier: str | None) -> str | None:
    if tier is not None and tier not in TIERS:
        raise field_error("tier", f"未知梯度 {tier} (可选: {', '.join(TIERS)})")
    return tier


@router.get("/regions", response_model=RegionTreeView, summary="区划树 (本级、上级路径、下级)")
async def region_tree(principal: ReaderDep, region: RegionQuery = None) -> RegionTreeView:
    code = in_jurisdiction(principal, region)
    tree = reporting.region_tree()
    return RegionTreeView(region=reporting.ref(code),
                          breadcrumbs=[reporting.ref(n.code) for n in tree.ancestors(code)],
                          children=[reporting.ref(n.code) for n in tree.children(code)])


@router.get("/attainment", response_model=Attainment, summary="目标达成 (本级及下级,按梯度;达成率)")
async def attainment(
    principal: ReaderDep, session: SessionDep, region: RegionQuery = None,
    year: Annotated[int | None, Query(ge=2000, le=2100, description=(
        "年度 (默认: 辖区内设有目标的最近年度, 不晚于当年; 均无目标时为当年)"))] = None,
    measure: Annotated[Literal["recognised", "pool"], Query(description="recognised 认定 / pool 入库")] = "recognised",
) -> Attainment:
    code = in_jurisdiction(principal, region)
    y = year or await reporting.default_year(session, principal.region)
    return await reporting.attainment(session, code, y, measure)


@router.get("/funnel", response_model=Funnel, summary="培育漏斗: 入库 → 申报 → 各级审核 → 认定")
async def funnel(principal: ReaderDep, session: SessionDep, year: YearQuery, region: RegionQuery = None,
                 tier: TierQuery = None) -> Funnel:
    return await reporting.funnel(session, in_jurisdiction(principal, region), year, _tier(tier))


@router.get("/money", response_model=Money, summary="奖补资金: 应补、审批、拨付、追回与预算")
async def money(principal: ReaderDep, session: SessionDep, year: YearQuery, region: RegionQuery = None) -> Money:
    return await reporting.money(session, in_jurisdiction(principal, region), year)


@router.get("/recognitions", response_model=Recognitions, summary="认定情况: 有效、新认定、到期、撤销")
async def recognitions(principal: ReaderDep, session: SessionDep, year: YearQuery,
                       region: RegionQuery = None) -> Recognitions:
    return await reporting.recognitions(session, in_jurisdiction(principal, region), year)


@router.get("/yoy", response_model=YearOnYear, summary="同比: 近几年的认定、入库、申报与拨付")
async def year_on_year(principal: ReaderDep, session: SessionDep, year: YearQuery, region: RegionQuery = None,
                       years: Annotated[int, Query(ge=2, le=10, description="年数")] = 3) -> YearOnYear:
    return await reporting.year_on_year(session, in_jurisdiction(principal, region), year, years)


@router.get("/forecast", response_model=Forecast, summary="预测: 各县尚缺数与最接近达标的培育库企业")
async def forecast(principal: ReaderDep, session: SessionDep, year: YearQuery, region: RegionQuery = None,
                   tier: TierQuery = None,
                   limit: Annotated[int, Query(ge=1, le=200, description="每县每梯度列出企业数")] = 20) -> Forecast:
    return await reporting.forecast(session, in_jurisdiction(principal, region), year, _tier(tier), limit)


@router.get("/notices", response_model=Notices, summary="通知发送: 按下级区划、类别与梯度、服务专员")
async def notices(principal: ReaderDep, session: SessionDep, year: YearQuery, region: RegionQuery = None) -> Notices:
    return await reporting.notices(session, in_jurisdiction(principal, region), year)


@router.get("/commissioners", response_model=list[CommissionerLoad], summary="服务专员及其服务企业数")
async def commissioners(principal: ReaderDep, session: SessionDep,
                        region: RegionQuery = None) -> list[CommissionerLoad]:
    return await reporting.commissioner_loads(session, in_jurisdiction(principal, region))


@router.get("/enterprises/{uscc}", response_model=EnterpriseView, summary="企业视图: 称号、评价差距、奖补、专员、事件")
async def enterprise(principal: ReaderDep, session: SessionDep,
                     uscc: Annotated[str, Path(pattern=r"^[0-9A-Z]{18}$")]) -> EnterpriseView:
    view = await enterprises.enterprise_view(session, uscc)
    if view is None or not principal.covers_region(view["region_code"]):
        raise not_found("企业")
    return EnterpriseView(uscc=uscc, name=view["name"],
                          region=reporting.ref(view["region_code"]) if view["region_code"] else None,
                          titles=view["titles"], evaluations=view["evaluations"],
                          applications=view["applications"], entitlements=view["entitlements"],
                          commissioner=view["commissioner"], events=[feed_event(r) for r in view["events"]])
