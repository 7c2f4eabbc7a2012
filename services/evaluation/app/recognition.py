"""Recognition effects shared by the API, the event handlers and the expiry worker."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.evaluation.db.models import ApplicationBan, Recognition, backbone
from services.evaluation.domain import workflow as wf
from services.evaluation.events.contracts import TIER_REVOKED, TierRevoked
from shared.audit import record_audit
from shared.auth import Principal
from shared.events.outbox import emit


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
    return (
        await session.execute(
            select(ApplicationBan)
            .where(ApplicationBan.uscc == uscc, ApplicationBan.banned_until >= on, ApplicationBan.banned_from <= on)
            .order_by(ApplicationBan.banned_until.desc())
            .limit(1)
        )
    ).scalar_one_or_none()


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
    q = select(Recognition).where(Recognition.uscc == uscc, Recognition.status == "active").with_for_update()
    active = list((await session.execute(q)).scalars().all())
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
