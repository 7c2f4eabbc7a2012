"""Targets per region, track, measure, level and year; progress = target vs actual, aggregated up the tree."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.registry.api.deps import PrincipalDep, SessionDep, WriterDep
from services.registry.api.schemas import ProgressOut, TargetIn, TargetOut
from services.registry.app import targets as cases

router = APIRouter(prefix="/api/v1/targets", tags=["targets 目标"])


@router.put("", response_model=TargetOut, summary="设定目标(同区划、方向、口径、层级、年度唯一)")
async def put_target(body: TargetIn, principal: WriterDep, session: SessionDep) -> TargetOut:
    async with session.begin():
        view = await cases.put_target(session, principal, body)
    return TargetOut(**view)


@router.get("", response_model=list[TargetOut], summary="目标列表(本区划及下级)")
async def list_targets(
    principal: PrincipalDep,
    session: SessionDep,
    region: Annotated[str | None, Query(pattern=r"^\d{6}$", description="区划(含下级)")] = None,
    year: Annotated[int | None, Query(ge=2000, le=2100, description="年度")] = None,
) -> list[TargetOut]:
    async with session.begin():
        views = await cases.list_targets(session, principal, region, year)
    return [TargetOut(**v) for v in views]


@router.get("/progress", response_model=ProgressOut, summary="目标完成进度(本级及各下级)")
async def progress(
    principal: PrincipalDep,
    session: SessionDep,
    year: Annotated[int, Query(ge=2000, le=2100, description="目标年度")],
    region: Annotated[str | None, Query(pattern=r"^\d{6}$", description="区划(默认本人辖区)")] = None,
) -> ProgressOut:
    async with session.begin():
        view = await cases.progress(session, principal, year, region)
    return ProgressOut(**view)
