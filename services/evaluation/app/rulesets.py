"""Rule sets (versioned, with sources and YAML cases), the self-assessment preview and re-evaluation jobs."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

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


async def start_reevaluation_job(
    engine: AsyncEngine,
    session_factory: async_sessionmaker[AsyncSession],
    session: AsyncSession,
    principal: Principal,
    ruleset_id: str,
) -> Job:
    """Queue (audited) and start a re-evaluation of every enterprise the rule set covers; owns its transaction.

    One live job per rule set: the job holds a session-level advisory lock for its whole run, on a connection of
    its own, taken here before the job is committed. If another session holds it, the request answers 409 naming
    the running job. A job left queued or running without a holder was interrupted (its process died): it is
    marked failed, audited, and the new job takes over."""
    key = evaluations_db.job_lock_key("reevaluate", ruleset_id)
    lease = await engine.connect()
    try:
        if not await evaluations_db.try_lock(lease, key):
            async with session.begin():
                running = await evaluations_db.unfinished_jobs(session, "reevaluate", ruleset_id)
            raise _running_problem(ruleset_id, running[0] if running else None)
        async with session.begin():
            job = await _queue_job(session, principal, ruleset_id)
    except BaseException:
        await _release(lease, key)
        raise
    task = asyncio.create_task(_run_holding(lease, key, session_factory, job.id, ruleset_id))
    _background.add(task)
    task.add_done_callback(_background.discard)
    return job


def _running_problem(ruleset_id: str, running: Job | None) -> Problem:
    if running is None:  # the holder is finishing right now
        return Problem(409, f"规则集 {ruleset_id} 的重新评价任务正在运行,请稍后再试")
    return Problem(
        409,
        f"规则集 {ruleset_id} 已有未完成的重新评价任务 {running.id}(状态 {running.status}),请等待其完成",
        job_id=str(running.id),
        job_status=running.status,
        href=f"/api/v1/reevaluations/{running.id}",
    )


async def _queue_job(session: AsyncSession, principal: Principal, ruleset_id: str) -> Job:
    if not await ruleset_store.is_stored(session, ruleset_id):
        raise not_found("规则集")
    job = Job(id=uuid.uuid4(), kind="reevaluate", ruleset_id=ruleset_id, status="queued", requested_by=principal.sub)
    for orphan in await evaluations_db.unfinished_jobs(session, "reevaluate", ruleset_id):
        before = {"status": orphan.status, "done": orphan.done}
        orphan.status = "failed"
        orphan.error = f"任务中断(运行它的进程已退出),由任务 {job.id} 取代"
        orphan.finished_at = datetime.now(UTC)
        await record_audit(session, backbone, principal, "job.interrupted", "job", str(orphan.id),
                           before=before, after={"status": "failed", "superseded_by": str(job.id)})
    session.add(job)
    await record_audit(session, backbone, principal, "ruleset.reevaluate", "job", str(job.id),
                       after={"ruleset_id": ruleset_id})
    return job


async def _run_holding(
    lease: AsyncConnection, key: str, session_factory: async_sessionmaker[AsyncSession], job_id: uuid.UUID,
    ruleset_id: str,
) -> None:
    try:
        await start_reevaluation(session_factory, job_id, ruleset_id)
    finally:
        await _release(lease, key)


async def _release(lease: AsyncConnection, key: str) -> None:
    try:
        await evaluations_db.unlock(lease, key)
    except Exception:  # a broken connection: invalidated below, PostgreSQL released its locks with the session
        await lease.invalidate()
    finally:
        await lease.close()


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
