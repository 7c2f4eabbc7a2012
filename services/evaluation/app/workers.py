"""Expiry / recheck worker: expires recognitions past valid_to and announces 复核 ~90 days ahead, each once.

Safe with several instances: rows are claimed with ``FOR UPDATE SKIP LOCKED`` and the state change that
makes a row ineligible (status, recheck_due_sent_at) commits together with the outbox row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.evaluation.config import get_config
from services.evaluation.db.models import Recognition, backbone
from services.evaluation.events.contracts import RECHECK_DUE, TIER_EXPIRED, RecheckDue, TierExpired
from shared.audit import record_audit
from shared.events.outbox import emit
from shared.runtime import ServiceRuntime

log = logging.getLogger(__name__)


async def expire_and_remind(
    session_factory: async_sessionmaker[AsyncSession], today: date, lead_days: int = 90, batch: int = 500
) -> tuple[int, int]:
    """One pass; returns (expired, recheck reminders)."""
    expired = reminded = 0
    while True:
        async with session_factory() as session, session.begin():
            rows = (
                await session.execute(
                    select(Recognition)
                    .where(Recognition.status == "active", Recognition.valid_to < today)
                    .order_by(Recognition.valid_to)
                    .limit(batch)
                    .with_for_update(skip_locked=True)
                )
            ).scalars().all()
            for r in rows:
                r.status = "expired"
                r.expired_on = r.valid_to + timedelta(days=1)
                await record_audit(session, backbone, None, "recognition.expire", "recognition", str(r.id),
                                   after={"status": "expired", "expired_on": r.expired_on.isoformat()})
                await emit(
                    session, backbone, TIER_EXPIRED, r.uscc,
                    TierExpired(recognition_id=str(r.id), uscc=r.uscc, region_code=r.region_code, tier=r.tier,
                                level=r.level, expired_on=r.expired_on),
                    regioncode=r.region_code,
                )
            expired += len(rows)
        if len(rows) < batch:
            break
    while True:
        async with session_factory() as session, session.begin():
            rows = (
                await session.execute(
                    select(Recognition)
                    .where(
                        Recognition.status == "active",
                        Recognition.recheck_due_sent_at.is_(None),
                        Recognition.valid_to <= today + timedelta(days=lead_days),
                        Recognition.valid_to >= today,
                    )
                    .order_by(Recognition.valid_to)
                    .limit(batch)
                    .with_for_update(skip_locked=True)
                )
            ).scalars().all()
            for r in rows:
                r.recheck_due_sent_at = datetime.now(UTC)
                await emit(
                    session, backbone, RECHECK_DUE, r.uscc,
                    RecheckDue(recognition_id=str(r.id), uscc=r.uscc, region_code=r.region_code, tier=r.tier,
                               level=r.level, valid_to=r.valid_to, due_on=r.valid_to - timedelta(days=lead_days)),
                    regioncode=r.region_code,
                )
            reminded += len(rows)
        if len(rows) < batch:
            break
    return expired, reminded


async def expiry_worker(runtime: ServiceRuntime) -> None:
    """Runs until the service stops; one pass per configured interval."""
    cfg = get_config()
    while not runtime.stopping.is_set():
        try:
            await expire_and_remind(runtime.session_factory, cfg.decision_date(), cfg.recheck_lead_days)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("expiry worker pass failed: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(runtime.stopping.wait(), timeout=cfg.expiry_interval_seconds)


async def reevaluation_workers(runtime: ServiceRuntime) -> None:
    """Start the re-evaluation worker processes with the service (``PRESTART_WORKERS``), stop them with it;
    resume the jobs a dead process left unfinished (from their last committed batch, issue 16 item 9). A job
    still running at stop is left running in the table and resumed by the next start."""
    from services.evaluation.app import reevaluation as jobs

    if get_config().prestart_workers:
        try:
            await jobs.prestart_workers()
        except Exception as exc:  # a job starts them itself
            log.warning("re-evaluation workers not started: %s", exc)
    resuming = asyncio.create_task(_resume_jobs(runtime))
    RESUME_PASSES[id(runtime)] = resuming
    try:
        await runtime.stopping.wait()
    finally:
        resuming.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await resuming
        RESUME_PASSES.pop(id(runtime), None)
        jobs.shutdown_workers()
        from services.evaluation.app import simulation

        simulation.shutdown()


# the start-up resume pass of each running service (by ``id(runtime)``): tests and operators can await it
RESUME_PASSES: dict[int, asyncio.Task[None]] = {}


async def _resume_jobs(runtime: ServiceRuntime) -> None:
    from services.evaluation.app import reevaluation as jobs

    try:
        resumed = await jobs.resume_interrupted(runtime.engine, runtime.session_factory)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # the next start tries again
        log.error("resuming interrupted re-evaluation jobs failed: %s", exc)
        return
    if resumed:
        log.info("resumed %d interrupted re-evaluation job(s)", resumed)


async def ruleset_sync_worker(runtime: ServiceRuntime) -> None:
    """Store the shipped rule-set files once at start (idempotent), then idle until stop."""
    from services.evaluation.db.ruleset_store import sync_rulesets

    try:
        await sync_rulesets(runtime.session_factory)
    except Exception as exc:
        log.error("rule-set sync failed: %s", exc)
    await runtime.stopping.wait()
