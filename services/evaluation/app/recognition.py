"""Recognitions (认定称号): reading them within jurisdiction and revoking them (by an official, or by an agency
listing through the event handlers)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.evaluation.app.access import can_see, deciding_level, require_official_level
from services.evaluation.config import get_config
from services.evaluation.db import recognitions as recognitions_db
from services.evaluation.db.enterprise_reads import titles_json
from services.evaluation.db.models import ApplicationBan, Enterprise, Recognition, backbone
from services.evaluation.domain import workflow as wf
from services.evaluation.events.contracts import TIER_REVOKED, TierRevoked
from shared.audit import record_audit
from shared.auth import Principal, Role
from shared.db_reads import ReadPool, scope_of
from shared.events.outbox import emit
from shared.problems import Problem, field_error, not_found


def recognition_view(r: Recognition) -> dict[str, Any]:
    return {
        "id": str(r.id),
        "uscc": r.uscc,
        "region_code": r.region_code,
        "tier": r.tier,
        "level": r.level,
        "ruleset_id": r.ruleset_id,
        "batch_year": r.batch_year,
        "application_id": str(r.application_id) if r.application_id else None,
        "announced_on": r.announced_on.isoformat(),
        "valid_from": r.valid_from.isoformat(),
        "valid_to": r.valid_to.isoformat(),
        "status": r.status,
        "renewal": r.renewal,
        "revoked_on": r.revoked_on.isoformat() if r.revoked_on else None,
        "revoke_ground": r.revoke_ground,
        "revoke_evidence": r.revoke_evidence,
        "ban_until": r.ban_until.isoformat() if r.ban_until else None,
        "expired_on": r.expired_on.isoformat() if r.expired_on else None,
    }


async def active_ban(session: AsyncSession, uscc: str, on: date) -> ApplicationBan | None:
    return await recognitions_db.active_ban(session, uscc, on)


async def revoke(
    session: AsyncSession,
    target: Recognition | None,
    uscc: str,
    ground: str,
    evidence: str,
    actor: Principal | None,
    revoked_on: date,
    *,
    all_titles: bool = False,
) -> list[Recognition]:
    """Revoke ``target`` (or every active title when ``all_titles``); data fraud: the whole ladder + ban."""
    active = await recognitions_db.active_of(session, uscc, lock=True)
    if target is not None and wf.revocation_scope(ground, target.tier) == "single" and not all_titles:
        victims = [r for r in active if r.id == target.id]
    elif ground == "data_fraud":
        victims = [r for r in active if r.tier in wf.LADDER_TIERS or (target is not None and r.id == target.id)]
    else:
        victims = active
    until = wf.ban_until(ground, revoked_on)
    for r in victims:
        before = recognition_view(r)
        r.status = "revoked"
        r.revoked_on = revoked_on
        r.revoke_ground = ground
        r.revoke_evidence = evidence
        r.ban_until = until
        await record_audit(
            session, backbone, actor, "recognition.revoke", "recognition", str(r.id),
            before=before, after=recognition_view(r),
        )
        await emit(
            session,
            backbone,
            TIER_REVOKED,
            r.uscc,
            TierRevoked(
                recognition_id=str(r.id), uscc=r.uscc, region_code=r.region_code, tier=r.tier, level=r.level,
                ground=ground, revoked_on=revoked_on, ban_until=until,
            ),
            regioncode=r.region_code,
        )
    if until is not None:
        session.add(
            ApplicationBan(id=uuid.uuid4(), uscc=uscc, ground=ground, banned_from=revoked_on, banned_until=until)
        )
        await record_audit(
            session, backbone, actor, "enterprise.ban", "enterprise", uscc,
            after={"ground": ground, "banned_until": until.isoformat()},
        )
    await session.flush()
    return victims


async def of_enterprise(session: AsyncSession, principal: Principal, uscc: str, today: date) -> dict[str, Any]:
    """An enterprise's titles: current, upcoming (validity starting later) and past, and any application ban.
    Through the session: the reference the route's :func:`of_enterprise_json` is held equal to
    (tests/evaluation/test_hot_reads.py)."""
    rows = await recognitions_db.of_enterprise(session, uscc)
    ent = await session.get(Enterprise, uscc)
    region = ent.region_code if ent else (rows[0].region_code if rows else None)
    if region is None or not await can_see(session, principal, uscc, region):
        raise not_found("企业")
    current = [recognition_view(r) for r in rows if r.status == "active" and r.valid_from <= today <= r.valid_to]
    # announced titles whose validity starts later (公告日 in the future relative to the decision date)
    upcoming = [recognition_view(r) for r in rows if r.status == "active" and r.valid_from > today]
    shown = {c["id"] for c in current} | {u["id"] for u in upcoming}
    ban = await recognitions_db.active_ban(session, uscc, today)
    return {
        "uscc": uscc,
        "current": current,
        "upcoming": upcoming,
        "past": [recognition_view(r) for r in rows if str(r.id) not in shown],
        "banned_until": ban.banned_until.isoformat() if ban else None,
    }


async def of_enterprise_json(pool: ReadPool, principal: Principal, uscc: str, today: date) -> str:
    """EnterpriseRecognitions' JSON (as :func:`of_enterprise`), written by PostgreSQL without a session."""
    body = await titles_json(pool, scope_of(principal), uscc, today)
    if body is None:
        raise not_found("企业")
    return body


async def visible(session: AsyncSession, principal: Principal, rec_id: uuid.UUID, *, lock: bool = False) -> Recognition:
    rec = await session.get(Recognition, rec_id, with_for_update=lock)
    if rec is None or not await can_see(session, principal, rec.uscc, rec.region_code):
        raise not_found("认定")
    return rec


async def revoke_by_official(
    session: AsyncSession, principal: Principal, rec_id: uuid.UUID, *, ground: str, evidence: str,
    revoked_on: date | None,
) -> list[Recognition]:
    """An official revokes a title within jurisdiction (data fraud: the whole ladder and a ban)."""
    cfg = get_config()
    if ground not in cfg.revocation_grounds:
        raise field_error("ground", f"撤销事由须为: {', '.join(cfg.revocation_grounds)}")
    rec = await visible(session, principal, rec_id, lock=True)
    if principal.role != Role.PROVINCE:
        require_official_level(principal, deciding_level(rec.level), "撤销称号")
    if rec.status != "active":
        raise Problem(409, f"称号状态为 {rec.status},不能撤销", allowed_transitions=[])
    return await revoke(session, rec, rec.uscc, ground, evidence, principal, revoked_on or cfg.decision_date())
