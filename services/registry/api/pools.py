"""Cultivation pools (培育库): entry by nomination or rule result, exit with reason, published lists."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.registry.api.deps import PrincipalDep, RegionPath, SessionDep, WriterDep
from services.registry.api.schemas import PoolEntryIn, PoolExitIn, PoolLevel, PoolListOut, PoolMembershipOut
from services.registry.app import pools as cases

router = APIRouter(prefix="/api/v1/pools", tags=["pools 培育库"])


@router.post("/{level}/{region}/members", status_code=201, response_model=PoolMembershipOut, summary="入库")
async def enter(
    level: PoolLevel, region: RegionPath, body: PoolEntryIn, principal: WriterDep, session: SessionDep
) -> PoolMembershipOut:
    async with session.begin():
        view = await cases.enter(session, principal, level, region, body)
    return PoolMembershipOut(**view)


@router.post("/{level}/{region}/members/{uscc}/exit", response_model=PoolMembershipOut, summary="出库")
async def exit_(
    level: PoolLevel, region: RegionPath, uscc: str, body: PoolExitIn, principal: WriterDep, session: SessionDep
) -> PoolMembershipOut:
    async with session.begin():
        view = await cases.exit_(session, principal, level, region, uscc, body)
    return PoolMembershipOut(**view)


@router.get("/{level}/{region}", response_model=PoolListOut, summary="培育库公布名单")
async def published_list(
    level: PoolLevel,
    region: RegionPath,
    principal: PrincipalDep,
    session: SessionDep,
    year: Annotated[
        int | None, Query(ge=2000, le=2100, description="年度: 入库年度不晚于该年且年末未出库的名单;不填为当前在库")
    ] = None,
    track: Annotated[str | None, Query(description="培育方向(称号 id)")] = None,
) -> PoolListOut:
    async with session.begin():
        view = await cases.published_list(session, principal, level, region, year, track)
    return PoolListOut(**view)
