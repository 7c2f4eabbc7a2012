"""Rule sets (versioned, with sources and YAML cases), the self-assessment preview and re-evaluation jobs."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.evaluation.app.evaluating import build_facts, jsonable, run_engine, select_in_force
from services.evaluation.app.reevaluation import start_reevaluation
from services.evaluation.db import evaluations as evaluations_db
from services.evaluation.db import ruleset_store
from services.evaluation.db.models import Job, RuleSetVersion, backbone
from services.evaluation.domain.facts import HeldTitle
from shared.audit import record_audit
from shared.auth import Principal, Role
from shared.indicators import IndicatorSet
from shared.problems import Problem, field_error, not_found

_background: set[asyncio.Task[None]] = set()


def summary(row: RuleSetVersion) -> dict[str, Any]:
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


def sources(definition: dict[str, Any]) -> list[dict[str, Any]]:
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


async def listing(session: AsyncSession, tier: str | None, in_force_on: date | None) -> list[dict[str, Any]]:
    rows = await ruleset_store.latest_versions(session, tier)
    if in_force_on is not None:
        rows = [
            r for r in rows
            if r.effective_from is not None and r.effective_from <= in_force_on
            and (r.effective_to is None or in_force_on <= r.effective_to)
        ]
    return [summary(r) for r in rows]


async def detail(session: AsyncSession, ruleset_id: str) -> dict[str, Any]:
    rows = await ruleset_store.versions_of(session, ruleset_id)
    if not rows:
        raise not_found("规则集")
    latest = next((r for r in rows if r.is_latest), rows[-1])
    found = sources(latest.definition)
    return {
        **summary(latest),
        "versions": [summary(r) for r in rows],
        "definition": latest.definition,
        "sources": found,
        "unconfirmed": [s for s in found if s["unconfirmed"]],
        "cases": latest.cases,
    }


async def preview(
    session: AsyncSession,
    *,
    ruleset: str | None,
    as_of: date,
    region_code: str,
    indicators: IndicatorSet,
    titles: list[dict[str, Any]],
    reporting_year: int | None,
    founded_on: date | None,
    industry_code: str | None,
    is_manufacturing: bool | None,
    is_recheck: bool,
) -> list[dict[str, Any]]:
    """The explained evaluation of the given facts under one rule set, or every one in force there (nothing
    stored)."""
    stored = [rs for _, rs in await ruleset_store.latest_rulesets(session)]
    if ruleset:
        chosen = [rs for rs in stored if str(rs.id) == ruleset]
        if not chosen:
            raise field_error("ruleset", f"规则集 {ruleset} 不存在 (unknown rule set)")
    else:
        chosen = select_in_force(stored, as_of, region_code)
    facts = build_facts(
        indicators,
        [HeldTitle(**t) for t in titles],
        region_code=region_code,
        reporting_year=reporting_year or as_of.year - 1,
        founded_on=founded_on,
        industry_code=industry_code,
        is_manufacturing=is_manufacturing,
        is_recheck=is_recheck,
    )
    return [jsonable(run_engine(rs, facts, as_of)) for rs in chosen]


async def request_reevaluation(session: AsyncSession, principal: Principal, ruleset_id: str) -> Job:
    """A queued re-evaluation job of every enterprise the rule set covers (audited); start it with
    :func:`launch` once committed. One unfinished job per rule set: a second request answers 409 naming it."""
    if not await ruleset_store.is_stored(session, ruleset_id):
        raise not_found("规则集")
    running = await evaluations_db.unfinished_job(session, "reevaluate", ruleset_id)
    if running is not None:
        raise Problem(
            409,
            f"规则集 {ruleset_id} 已有未完成的重新评价任务 {running.id}(状态 {running.status}),请等待其完成",
            job_id=str(running.id),
            job_status=running.status,
            href=f"/api/v1/reevaluations/{running.id}",
        )
    job = Job(id=uuid.uuid4(), kind="reevaluate", ruleset_id=ruleset_id, status="queued", requested_by=principal.sub)
    session.add(job)
    await record_audit(session, backbone, principal, "ruleset.reevaluate", "job", str(job.id),
                       after={"ruleset_id": ruleset_id})
    return job


def launch(session_factory: async_sessionmaker[AsyncSession], job: Job, ruleset_id: str) -> None:
    """Run the committed job in the background of this process."""
    task = asyncio.create_task(start_reevaluation(session_factory, job.id, ruleset_id))
    _background.add(task)
    task.add_done_callback(_background.discard)


def job_view(job: Job) -> dict[str, Any]:
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


async def job_progress(session: AsyncSession, principal: Principal, job_id: uuid.UUID) -> dict[str, Any]:
    """A job's progress, for officials whose territory covers its rule set's jurisdiction (a national rule set:
    province officials); 404 for everyone else."""
    job = await session.get(Job, job_id)
    if job is None or not await _job_in_jurisdiction(session, principal, job):
        raise not_found("任务")
    return job_view(job)


async def _job_in_jurisdiction(session: AsyncSession, principal: Principal, job: Job) -> bool:
    if principal.role == Role.ADMIN:
        return True
    versions = await ruleset_store.versions_of(session, job.ruleset_id) if job.ruleset_id else []
    if not versions:
        return False
    jurisdiction = versions[-1].jurisdiction
    if jurisdiction == "national":
        return principal.role == Role.PROVINCE
    return principal.covers_region(jurisdiction)
