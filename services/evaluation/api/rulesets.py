"""Rule sets (versioned, with sources and YAML cases), preview evaluation, stored evaluations, jobs."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from services.evaluation.api.common import visible_enterprise
from services.evaluation.app.evaluating import build_facts, jsonable, run_engine, select_in_force
from services.evaluation.app.reevaluation import start_reevaluation
from services.evaluation.db.models import Evaluation, Job, RuleSetVersion
from services.evaluation.db.ruleset_store import latest_rulesets
from shared.audit import record_audit
from shared.auth import Principal, Role
from shared.deps import PrincipalDep, RuntimeDep, SessionDep, require_roles
from shared.indicators import IndicatorSet
from shared.problems import field_error, not_found

router = APIRouter(prefix="/api/v1", tags=["rulesets & evaluations"])
_background: set[asyncio.Task[None]] = set()


def _summary(row: RuleSetVersion) -> dict[str, Any]:
    return {
        "id": row.ruleset_id,
        "version": row.version,
        "source_version": row.source_version,
        "family": row.family,
        "document_number": row.document_number,
        "title": row.title,
        "tier": row.tier,
        "level": row.level,
        "jurisdiction": row.jurisdiction,
        "effective_from": row.effective_from.isoformat() if row.effective_from else None,
        "effective_to": row.effective_to.isoformat() if row.effective_to else None,
        "content_hash": row.content_hash,
        "stored_at": row.created_at.isoformat() if row.created_at else None,
    }


def _sources(definition: dict[str, Any]) -> list[dict[str, Any]]:
    """Every source note and UNCONFIRMED flag in the definition, with the path where it sits."""
    out: list[dict[str, Any]] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            if "source" in node or node.get("unconfirmed"):
                out.append(
                    {
                        "path": path or "$",
                        "code": node.get("code"),
                        "name": node.get("name") or node.get("title"),
                        "source": node.get("source"),
                        "unconfirmed": bool(node.get("unconfirmed")),
                    }
                )
            for k, v in node.items():
                walk(v, f"{path}.{k}" if path else k)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}.{i}")

    walk(definition, "")
    return out


@router.get("/rulesets", summary="规则集列表 (latest versions)")
async def list_rulesets(
    session: SessionDep,
    principal: PrincipalDep,
    tier: Annotated[str | None, Query(description="称号层级")] = None,
    in_force_on: Annotated[date | None, Query(description="在该日期有效")] = None,
) -> dict[str, Any]:
    q = select(RuleSetVersion).where(RuleSetVersion.is_latest.is_(True)).order_by(RuleSetVersion.ruleset_id)
    if tier:
        q = q.where(RuleSetVersion.tier == tier)
    rows = (await session.execute(q)).scalars().all()
    items = [_summary(r) for r in rows]
    if in_force_on is not None:
        items = [
            i for i, r in zip(items, rows, strict=True)
            if r.effective_from is not None and r.effective_from <= in_force_on
            and (r.effective_to is None or in_force_on <= r.effective_to)
        ]
    return {"items": items, "total": len(items)}


@router.get("/rulesets/{ruleset_id}", summary="规则集详情 (versions, sources, YAML cases)")
async def get_ruleset(ruleset_id: str, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    rows = (
        await session.execute(
            select(RuleSetVersion).where(RuleSetVersion.ruleset_id == ruleset_id).order_by(RuleSetVersion.version)
        )
    ).scalars().all()
    if not rows:
        raise not_found("规则集")
    latest = next((r for r in rows if r.is_latest), rows[-1])
    return {
        **_summary(latest),
        "versions": [_summary(r) for r in rows],
        "definition": latest.definition,
        "sources": _sources(latest.definition),
        "unconfirmed": [s for s in _sources(latest.definition) if s["unconfirmed"]],
        "cases": latest.cases,
    }


class TitleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tier: str = Field(description="称号层级 (innovative、srdi、little_giant …)")
    level: str = Field(description="认定级别 (national、province、city、county)")
    valid_from: date = Field(description="有效期起")
    valid_to: date = Field(description="有效期至")
    revoked: bool = Field(False, description="已撤销")


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ruleset: str | None = Field(None, description="规则集编号;缺省时按在决定日有效且覆盖该地区的全部规则集评价")
    as_of: date = Field(description="决定日期 (decision date)")
    indicators: IndicatorSet = Field(description="年度指标 (与 registry 同一口径)")
    titles: list[TitleIn] = Field(default_factory=list, description="已持有称号")
    region_code: str | None = Field(None, pattern=r"^\d{6}$", description="注册地行政区划代码;缺省为调用者所在地区")
    founded_on: date | None = Field(None, description="成立日期")
    industry_code: str | None = Field(None, max_length=10, description="行业代码")
    is_manufacturing: bool | None = Field(None, description="是否制造业")
    reporting_year: int | None = Field(None, ge=1990, le=2100, description="指标年度;缺省为决定日上一年")
    is_recheck: bool = Field(False, description="是否复核")


@router.post("/evaluations/preview", summary="自评预览 (self-assessment; nothing stored)")
async def preview(body: PreviewIn, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    from services.evaluation.domain.facts import HeldTitle

    region = body.region_code or principal.region
    stored = [rs for _, rs in await latest_rulesets(session)]
    if body.ruleset:
        chosen = [rs for rs in stored if str(rs.id) == body.ruleset]
        if not chosen:
            raise field_error("ruleset", f"规则集 {body.ruleset} 不存在 (unknown rule set)")
    else:
        chosen = select_in_force(stored, body.as_of, region)
    facts = build_facts(
        body.indicators,
        [HeldTitle(**t.model_dump()) for t in body.titles],
        region_code=region,
        reporting_year=body.reporting_year or body.as_of.year - 1,
        founded_on=body.founded_on,
        industry_code=body.industry_code,
        is_manufacturing=body.is_manufacturing,
        is_recheck=body.is_recheck,
    )
    results = [jsonable(run_engine(rs, facts, body.as_of)) for rs in chosen]
    return {"as_of": body.as_of.isoformat(), "region_code": region, "results": results}


@router.get("/enterprises/{uscc}/evaluations", summary="企业最新评价结果(按称号层级, 含解释)")
async def enterprise_evaluations(
    uscc: str,
    session: SessionDep,
    principal: PrincipalDep,
    year: Annotated[int | None, Query(description="指标年度")] = None,
) -> dict[str, Any]:
    from services.evaluation.app.evaluating import evaluation_view

    await visible_enterprise(session, principal, uscc)
    q = select(Evaluation).where(Evaluation.uscc == uscc)
    if year is not None:
        q = q.where(Evaluation.year == year)
    rows = (await session.execute(q.order_by(Evaluation.created_at.desc()).limit(2000))).scalars().all()
    # latest per (tier, rule set); per tier keep the rule sets of its newest evaluation run
    seen: set[tuple[str, str]] = set()
    latest: dict[str, list[Evaluation]] = {}
    for r in rows:
        if (r.tier, r.ruleset_id) in seen:
            continue
        seen.add((r.tier, r.ruleset_id))
        latest.setdefault(r.tier, []).append(r)
    items: list[dict[str, Any]] = []
    for _tier, group in sorted(latest.items()):
        newest = max(g.created_at for g in group)
        items.extend(evaluation_view(g) for g in group if g.created_at == newest)
    return {"uscc": uscc, "year": year, "items": items}


ProvinceDep = Annotated[Principal, Depends(require_roles(Role.PROVINCE))]


@router.post("/rulesets/{ruleset_id}/reevaluate", status_code=202, summary="按规则集重新评价全部相关企业 (job)")
async def reevaluate(
    ruleset_id: str, session: SessionDep, principal: ProvinceDep, runtime: RuntimeDep
) -> dict[str, Any]:
    async with session.begin():
        exists = (
            await session.execute(select(func.count()).where(RuleSetVersion.ruleset_id == ruleset_id))
        ).scalar()
        if not exists:
            raise not_found("规则集")
        job = Job(id=uuid.uuid4(), kind="reevaluate", ruleset_id=ruleset_id, status="queued",
                  requested_by=principal.sub)
        session.add(job)
        await record_audit(session, _bb(), principal, "ruleset.reevaluate", "job", str(job.id),
                           after={"ruleset_id": ruleset_id})
    task = asyncio.create_task(start_reevaluation(runtime.session_factory, job.id, ruleset_id))
    _background.add(task)
    task.add_done_callback(_background.discard)
    return {"job_id": str(job.id), "status": "queued", "href": f"/api/v1/reevaluations/{job.id}"}


def _bb() -> Any:
    from services.evaluation.db.models import backbone

    return backbone


@router.get("/reevaluations/{job_id}", summary="重新评价任务进度 (re-evaluation job progress)")
async def get_job(
    job_id: uuid.UUID,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require_roles(Role.PROVINCE, Role.CITY, Role.COUNTY))],
) -> dict[str, Any]:
    job = await session.get(Job, job_id)
    if job is None:
        raise not_found("任务")
    pct = round(100 * job.done / job.total, 1) if job.total else (100.0 if job.status == "done" else 0.0)
    return {
        "id": str(job.id),
        "kind": job.kind,
        "ruleset_id": job.ruleset_id,
        "status": job.status,
        "total": job.total,
        "done": job.done,
        "progress_pct": pct,
        "error": job.error,
        "created_at": job.created_at.isoformat() if job.created_at else None,
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }

