"""Rule sets (versioned, with sources and YAML cases), preview evaluation, stored evaluations, jobs."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from services.evaluation.api.deps import OfficialDep, PrincipalDep, ProvinceDep, RuntimeDep, SessionDep
from services.evaluation.api.schemas import (
    EnterpriseEvaluations,
    JobAccepted,
    JobOut,
    PreviewIn,
    PreviewOut,
    RuleSetDetail,
    RuleSetList,
)
from services.evaluation.app import evaluating, rulesets
from shared.db_reads import json_response
from shared.deps import read_pool

router = APIRouter(prefix="/api/v1", tags=["rulesets & evaluations"])


@router.get("/rulesets", response_model=RuleSetList, summary="规则集列表 (latest versions)")
async def list_rulesets(
    session: SessionDep,
    principal: PrincipalDep,
    tier: Annotated[str | None, Query(description="称号层级")] = None,
    in_force_on: Annotated[date | None, Query(description="在该日期有效")] = None,
) -> dict[str, Any]:
    items = await rulesets.listing(session, tier, in_force_on)
    return {"items": items, "total": len(items)}


@router.get("/rulesets/{ruleset_id}", response_model=RuleSetDetail,
            summary="规则集详情 (versions, sources, YAML cases)")
async def get_ruleset(ruleset_id: str, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    return await rulesets.detail(session, ruleset_id)


@router.post("/evaluations/preview", response_model=PreviewOut, summary="自评预览 (self-assessment; nothing stored)")
async def preview(body: PreviewIn, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    region = body.region_code or principal.region
    results = await rulesets.preview(
        session,
        ruleset=body.ruleset,
        as_of=body.as_of,
        region_code=region,
        indicators=body.indicators,
        titles=[t.model_dump() for t in body.titles],
        reporting_year=body.reporting_year,
        founded_on=body.founded_on,
        industry_code=body.industry_code,
        is_manufacturing=body.is_manufacturing,
        is_recheck=body.is_recheck,
    )
    return {"as_of": body.as_of.isoformat(), "region_code": region, "results": results}


@router.get("/enterprises/{uscc}/evaluations", response_model=EnterpriseEvaluations,
            summary="企业最新评价结果(按称号层级, 含解释)")
async def enterprise_evaluations(
    uscc: str,
    principal: PrincipalDep,
    request: Request,
    year: Annotated[int | None, Query(description="指标年度")] = None,
) -> Response:
    # a hot read of the 企业码 app: EnterpriseEvaluations' JSON written by PostgreSQL, passed through
    return json_response(await evaluating.latest_of_enterprise_json(read_pool(request), principal, uscc, year))


@router.post("/rulesets/{ruleset_id}/reevaluate", status_code=202, response_model=JobAccepted,
             summary="按规则集重新评价全部相关企业 (job)")
async def reevaluate(
    ruleset_id: str, session: SessionDep, principal: ProvinceDep, runtime: RuntimeDep
) -> dict[str, Any]:
    job = await rulesets.start_reevaluation_job(runtime.engine, runtime.session_factory, session, principal,
                                                ruleset_id)
    return {"job_id": str(job.id), "status": "queued", "href": f"/api/v1/reevaluations/{job.id}"}


@router.get("/reevaluations/{job_id}", response_model=JobOut, summary="重新评价任务进度 (re-evaluation job progress)")
async def get_job(job_id: uuid.UUID, session: SessionDep, principal: OfficialDep) -> dict[str, Any]:
    return await rulesets.job_progress(session, principal, job_id)
