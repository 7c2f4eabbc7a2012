"""/api/v1/policies: subsidy policies as data (drafts by the jurisdiction's officials, then published)."""

from __future__ import annotations

from fastapi import APIRouter

from services.finance.api.deps import Official, manage
from services.finance.api.schemas import PolicyIn, PolicyOut
from services.finance.app import policies as uc
from shared.deps import PrincipalDep, SessionDep

router = APIRouter(prefix="/api/v1/policies", tags=["policies 奖补政策"])


@router.get("", response_model=list[PolicyOut], summary="政策列表")
async def list_policies(
    session: SessionDep,
    principal: PrincipalDep,
    jurisdiction: str | None = None,
    kind: str | None = None,
    status: str | None = None,
) -> list[PolicyOut]:
    rows = await uc.listing(session, principal, jurisdiction=jurisdiction, kind=kind, status=status)
    return [PolicyOut.of(r) for r in rows]


@router.get("/{policy_id}", response_model=PolicyOut, summary="政策详情")
async def get_policy(policy_id: str, session: SessionDep, principal: PrincipalDep) -> PolicyOut:
    return PolicyOut.of(await uc.get_visible(session, principal, policy_id))


@router.post("", response_model=PolicyOut, status_code=201, summary="新建政策草稿(本辖区工作人员)")
async def create_policy(body: PolicyIn, session: SessionDep, principal: Official) -> PolicyOut:
    manage(principal, body.jurisdiction)
    async with session.begin():
        row = await uc.create(session, principal, body.model_dump())
    return PolicyOut.of(row)


@router.put("/{policy_id}", response_model=PolicyOut, summary="修改政策草稿")
async def update_policy(policy_id: str, body: PolicyIn, session: SessionDep, principal: Official) -> PolicyOut:
    async with session.begin():
        row = await uc.update(session, principal, policy_id, body.model_dump())
    return PolicyOut.of(row)


@router.post("/{policy_id}/publish", response_model=PolicyOut, summary="发布政策")
async def publish_policy(policy_id: str, session: SessionDep, principal: Official) -> PolicyOut:
    async with session.begin():
        row = await uc.publish(session, principal, policy_id)
    return PolicyOut.of(row)
