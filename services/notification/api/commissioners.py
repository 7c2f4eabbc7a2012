"""服务专员 directory and assignments."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from services.notification.api.deps import OfficialOrAdminDep, PrincipalDep, SessionDep
from services.notification.api.schemas import (
    AssignmentOut,
    CommissionerIn,
    CommissionerOut,
    CommissionerPatch,
    NearQualifyingOut,
    ReassignIn,
    ServedEnterprise,
)
from services.notification.app import commissioners as uc
from services.notification.app import gap_advice

router = APIRouter(prefix="/api/v1", tags=["服务专员 commissioners"])


@router.post("/commissioners", status_code=201, response_model=CommissionerOut, summary="新增服务专员")
async def create_commissioner(
    body: CommissionerIn, session: SessionDep, principal: OfficialOrAdminDep
) -> CommissionerOut:
    async with session.begin():
        return CommissionerOut(**await uc.create(session, principal, body.model_dump()))


@router.get("/commissioners", response_model=list[CommissionerOut], summary="服务专员列表(管辖范围内)")
async def list_commissioners(
    session: SessionDep,
    principal: OfficialOrAdminDep,
    region: Annotated[str | None, Query(pattern=r"^\d{6}$", description="按行政区划筛选")] = None,
    level: Annotated[Literal["city", "county"] | None, Query(description="按层级筛选")] = None,
    active: Annotated[bool | None, Query(description="按在岗状态筛选")] = None,
) -> list[CommissionerOut]:
    async with session.begin():
        rows = await uc.listing(session, principal, region=region, level=level, active=active)
    return [CommissionerOut(**r) for r in rows]


@router.get("/commissioners/{cid}", response_model=CommissionerOut, summary="服务专员详情")
async def get_commissioner(cid: str, session: SessionDep, principal: PrincipalDep) -> CommissionerOut:
    async with session.begin():
        return CommissionerOut(**await uc.detail(session, principal, cid))


@router.patch("/commissioners/{cid}", response_model=CommissionerOut, summary="修改或停用服务专员")
async def patch_commissioner(
    cid: str, body: CommissionerPatch, session: SessionDep, principal: OfficialOrAdminDep
) -> CommissionerOut:
    async with session.begin():
        return CommissionerOut(**await uc.change(session, principal, cid, body.model_dump(exclude_unset=True)))


@router.get("/commissioners/{cid}/enterprises", response_model=list[ServedEnterprise], summary="服务专员负责的企业")
async def commissioner_enterprises(cid: str, session: SessionDep, principal: PrincipalDep) -> list[ServedEnterprise]:
    async with session.begin():
        rows = await uc.served_enterprises(session, principal, cid)
    return [ServedEnterprise(**r) for r in rows]


@router.get("/commissioners/{cid}/near-qualifying", response_model=list[NearQualifyingOut],
            summary="服务专员负责的接近达标企业(达标差距提醒)")
async def near_qualifying(
    cid: str,
    session: SessionDep,
    principal: PrincipalDep,
    year: Annotated[int | None, Query(ge=2000, le=2100, description="按数据年度筛选")] = None,
) -> list[NearQualifyingOut]:
    async with session.begin():
        rows = await gap_advice.near_qualifying(session, principal, cid, year)
    return [NearQualifyingOut(**r) for r in rows]


@router.get("/enterprises/{uscc}/commissioner", response_model=AssignmentOut, summary="企业的服务专员及指派历史")
async def enterprise_commissioner(uscc: str, session: SessionDep, principal: PrincipalDep) -> AssignmentOut:
    async with session.begin():
        return AssignmentOut.model_validate(await uc.assignment_view(session, principal, uscc))


@router.post("/enterprises/{uscc}/commissioner", response_model=AssignmentOut, summary="人工调整服务专员")
async def reassign(uscc: str, body: ReassignIn, session: SessionDep, principal: OfficialOrAdminDep) -> AssignmentOut:
    async with session.begin():
        return AssignmentOut.model_validate(
            await uc.reassign(session, principal, uscc, body.commissioner_id, body.reason)
        )
