"""Enterprises and their annual indicators."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from services.registry.api.deps import FilterDep, PrincipalDep, SessionDep, WriterDep
from services.registry.api.schemas import (
    DeregisterIn,
    EnterpriseIn,
    EnterpriseOut,
    EnterprisePage,
    EnterprisePatch,
    IndicatorsIn,
    IndicatorsOut,
    PoolMembershipOut,
)
from services.registry.app import enterprises as cases
from services.registry.app import indicators as indicator_cases
from services.registry.db.enterprises import list_conditions
from shared.db_reads import json_response
from shared.deps import read_pool
from shared.spreadsheets import write_xlsx

router = APIRouter(prefix="/api/v1/enterprises", tags=["enterprises 企业"])


@router.post("", status_code=201, response_model=EnterpriseOut, summary="登记企业")
async def register(body: EnterpriseIn, principal: WriterDep, session: SessionDep, response: Response) -> EnterpriseOut:
    async with session.begin():
        view, etag = await cases.register(session, principal, body)
    response.headers["ETag"] = etag
    response.headers["Location"] = f"/api/v1/enterprises/{view['uscc']}"
    return EnterpriseOut(**view)


@router.get("", response_model=EnterprisePage, summary="企业列表(筛选、关键字、游标分页)")
async def list_(
    principal: PrincipalDep,
    session: SessionDep,
    f: FilterDep,
    cursor: Annotated[str | None, Query(description="上一页返回的 next_cursor")] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="每页条数")] = 50,
) -> EnterprisePage:
    async with session.begin():
        items, nxt = await cases.list_page(session, principal, f, cursor, limit)
    return EnterprisePage(items=[EnterpriseOut(**v) for v in items], next_cursor=nxt)


@router.get(
    "/export.xlsx",
    summary="导出企业列表(XLSX,筛选条件同列表)",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {}}}},
)
async def export(principal: PrincipalDep, session: SessionDep, f: FilterDep) -> StreamingResponse:
    list_conditions(principal, f)  # refuse bad filters before anything is read
    async with session.begin():
        rows = await cases.export_rows(session, principal, f)
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    return StreamingResponse(
        io.BytesIO(write_xlsx("企业", rows)),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="enterprises-{stamp}.xlsx"'},
    )


@router.get("/{uscc}", response_model=EnterpriseOut, summary="企业详情(含当前称号与培育库)")
async def get_one(uscc: str, principal: PrincipalDep, request: Request) -> Response:
    # the hot read: EnterpriseOut's JSON written by PostgreSQL in one statement, passed through (the model documents
    # it; tests/registry/test_enterprise_view.py holds the two equal)
    body, etag = await cases.show(read_pool(request), principal, uscc)
    return json_response(body, {"ETag": etag})


@router.patch("/{uscc}", response_model=EnterpriseOut, summary="修改企业信息(乐观锁 If-Match)")
async def patch(
    uscc: str,
    body: EnterprisePatch,
    principal: PrincipalDep,
    session: SessionDep,
    response: Response,
    if_match: Annotated[str | None, Header(description="ETag of the version being edited")] = None,
) -> EnterpriseOut:
    async with session.begin():
        view, etag = await cases.update(session, principal, uscc, body, if_match)
    response.headers["ETag"] = etag
    return EnterpriseOut(**view)


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
        view, etag = await cases.deregister(session, principal, uscc, body.reason, if_match)
    response.headers["ETag"] = etag
    return EnterpriseOut(**view)


@router.get("/{uscc}/pools", response_model=list[PoolMembershipOut], summary="培育库出入库历史")
async def pool_history(uscc: str, principal: PrincipalDep, session: SessionDep) -> list[PoolMembershipOut]:
    async with session.begin():
        rows = await cases.pool_history(session, principal, uscc)
    return [PoolMembershipOut(**r) for r in rows]


# ---------------------------------------------------------------- indicators


@router.put("/{uscc}/indicators/{year}", response_model=IndicatorsOut, summary="报送年度指标(每次报送保留修订)")
async def put_indicators(
    uscc: str, year: int, body: IndicatorsIn, principal: PrincipalDep, session: SessionDep
) -> IndicatorsOut:
    async with session.begin():
        view = await indicator_cases.put(session, principal, uscc, year, body)
    return IndicatorsOut(**view)


@router.get("/{uscc}/indicators", response_model=list[IndicatorsOut], summary="各年度有效指标(最新)")
async def list_indicators(uscc: str, principal: PrincipalDep, session: SessionDep) -> list[IndicatorsOut]:
    async with session.begin():
        views = await indicator_cases.list_years(session, principal, uscc)
    return [IndicatorsOut(**v) for v in views]


@router.get("/{uscc}/indicators/{year}", response_model=IndicatorsOut, summary="某年度有效指标(可含修订历史)")
async def get_indicators(
    uscc: str,
    year: int,
    principal: PrincipalDep,
    session: SessionDep,
    history: Annotated[bool, Query(description="是否返回全部修订")] = False,
) -> IndicatorsOut:
    async with session.begin():
        view = await indicator_cases.get_year(session, principal, uscc, year, history)
    return IndicatorsOut(**view)
