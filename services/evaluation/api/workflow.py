"""Recognition workflow: applications (申报/推荐) → reviews → publicity (公示) → announcement → recognitions."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from services.evaluation.api.deps import OfficialDep, PrincipalDep, SessionDep
from services.evaluation.api.schemas import (
    Announced,
    AnnounceIn,
    ApplicationIn,
    ApplicationList,
    ApplicationOut,
    CommentIn,
    EnterpriseRecognitions,
    ObjectionIn,
    ObjectionLodged,
    RecognitionOut,
    ResolveIn,
    ReviewIn,
    Revoked,
    RevokeIn,
)
from services.evaluation.app import applications as uc
from services.evaluation.app import recognition
from services.evaluation.config import get_config
from services.evaluation.domain import workflow as wf
from shared.db_reads import json_response
from shared.deps import read_pool

router = APIRouter(prefix="/api/v1", tags=["recognition workflow"])



# ---------------------------------------------------------------- applications


@router.post("/applications", status_code=201, response_model=ApplicationOut,
             response_model_exclude_unset=True,  # objections, evaluation: only where shown
             summary="申报(企业自行申报或县级推荐)")
async def submit_application(body: ApplicationIn, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    async with session.begin():
        return await uc.submit(session, principal, uscc=body.uscc, tier=body.tier, level=body.level,
                               batch_year=body.batch_year, recheck_of=body.recheck_of)


@router.get("/applications", response_model=ApplicationList, response_model_exclude_unset=True,
            summary="申请列表(本辖区)")
async def list_applications(
    session: SessionDep,
    principal: PrincipalDep,
    state: Annotated[str | None, Query(description="状态")] = None,
    tier: Annotated[str | None, Query(description="称号层级")] = None,
    batch_year: Annotated[int | None, Query(ge=2018, le=2100, description="批次年度")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    items = await uc.listing(session, principal, state=state, tier=tier, batch_year=batch_year, limit=limit)
    return {"items": items}


@router.get("/applications/{app_id}", response_model=ApplicationOut,
            response_model_exclude_unset=True,  # objections, evaluation: only where shown
            summary="申请详情(含允许的操作)")
async def get_application(app_id: uuid.UUID, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    return await uc.detail(session, principal, app_id)


@router.post("/applications/{app_id}/reviews", response_model=ApplicationOut,
             response_model_exclude_unset=True,  # objections, evaluation: only where shown
             summary="审核(县级 → 市级 → 省级 → 国家结果登记)")
async def review(app_id: uuid.UUID, body: ReviewIn, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    async with session.begin():
        return await uc.review(session, principal, app_id, stage=body.stage, decision=body.decision,
                               comment=body.comment)


@router.post("/applications/{app_id}/objections", status_code=201, response_model=ObjectionLodged,
             summary="公示期异议登记")
async def lodge_objection(
    app_id: uuid.UUID, body: ObjectionIn, session: SessionDep, principal: OfficialDep
) -> dict[str, Any]:
    async with session.begin():
        obj = await uc.lodge_objection(session, principal, app_id, body.content)
        return {"id": str(obj.id), "application_id": str(obj.application_id), "status": "open"}


@router.post("/applications/{app_id}/objections/{objection_id}/resolve", response_model=ApplicationOut,
             response_model_exclude_unset=True,  # objections, evaluation: only where shown
             summary="异议处理")
async def resolve_objection(
    app_id: uuid.UUID, objection_id: uuid.UUID, body: ResolveIn, session: SessionDep, principal: PrincipalDep
) -> dict[str, Any]:
    async with session.begin():
        return await uc.resolve_objection(session, principal, app_id, objection_id, outcome=body.outcome,
                                          resolution=body.resolution)


@router.post("/applications/{app_id}/announce", response_model=Announced, response_model_exclude_unset=True,
             summary="公告认定(公示期满且异议已处理)")
async def announce(
    app_id: uuid.UUID, body: AnnounceIn, session: SessionDep, principal: PrincipalDep
) -> dict[str, Any]:
    async with session.begin():
        return await uc.announce(session, principal, app_id, body.announced_on)


@router.post("/applications/{app_id}/resubmit", response_model=ApplicationOut,
             response_model_exclude_unset=True,  # objections, evaluation: only where shown
             summary="退回后重新提交")
async def resubmit(app_id: uuid.UUID, body: CommentIn, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    async with session.begin():
        return await uc.applicant_action(session, principal, app_id, wf.Action.RESUBMIT, body.comment)


@router.post("/applications/{app_id}/withdraw", response_model=ApplicationOut,
             response_model_exclude_unset=True,  # objections, evaluation: only where shown
             summary="撤回申请")
async def withdraw(app_id: uuid.UUID, body: CommentIn, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    async with session.begin():
        return await uc.applicant_action(session, principal, app_id, wf.Action.WITHDRAW, body.comment)


# ---------------------------------------------------------------- recognitions


@router.get("/enterprises/{uscc}/recognitions", response_model=EnterpriseRecognitions,
            summary="企业当前及历史称号")
async def enterprise_recognitions(uscc: str, principal: PrincipalDep, request: Request) -> Response:
    # a hot read of the 企业码 app: EnterpriseRecognitions' JSON written by PostgreSQL, passed through
    body = await recognition.of_enterprise_json(read_pool(request), principal, uscc, get_config().decision_date())
    return json_response(body)


@router.get("/recognitions/{rec_id}", response_model=RecognitionOut, summary="认定详情")
async def get_recognition(rec_id: uuid.UUID, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    return recognition.recognition_view(await recognition.visible(session, principal, rec_id))


@router.post("/recognitions/{rec_id}/revoke", response_model=Revoked,
             summary="撤销称号(数据造假: 撤销全部梯度称号并三年内不得申报)")
async def revoke_recognition(
    rec_id: uuid.UUID, body: RevokeIn, session: SessionDep, principal: OfficialDep
) -> dict[str, Any]:
    async with session.begin():
        victims = await recognition.revoke_by_official(session, principal, rec_id, ground=body.ground,
                                                       evidence=body.evidence, revoked_on=body.revoked_on)
        return {"revoked": [recognition.recognition_view(v) for v in victims]}
