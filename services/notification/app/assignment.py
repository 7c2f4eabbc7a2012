"""Applying the assignment rule: assign, reassign, release, alert; with history, audit and events.

Every function runs inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from services.notification.app.notices import commissioner_recipient, create_notice, official_recipient
from services.notification.db import assignments as assignment_repo
from services.notification.db import commissioners as commissioner_repo
from services.notification.db import enterprises as enterprise_repo
from services.notification.db.models import backbone
from services.notification.domain.assignment import (
    SERVICE_LEVEL_NAMES,
    Candidate,
    Level,
    alert_role,
    pick_commissioner,
    required_level,
    target_region,
)
from services.notification.events.contracts import (
    ASSIGNED,
    RELEASED,
    UNAVAILABLE,
    CommissionerAssigned,
    CommissionerReleased,
    CommissionerUnavailable,
)
from shared.audit import record_audit
from shared.auth import Principal
from shared.events.outbox import emit
from shared.tiers import tier_name


@dataclass(frozen=True)
class Outcome:
    status: str  # unchanged / assigned / unassigned / released / none
    commissioner_id: str | None = None


async def candidates(session: AsyncSession, region: str, level: str) -> list[Candidate]:
    """Active commissioners of ``region``/``level`` with their current load; rows locked to serialise capacity."""
    rows = await commissioner_repo.active_locked(session, region, level)
    if not rows:
        return []
    loads = await commissioner_repo.loads(session, [r.id for r in rows])
    return [Candidate(r.id, loads.get(r.id, 0), r.capacity, r.active) for r in rows]


async def _history(
    session: AsyncSession,
    uscc: str,
    commissioner_id: str | None,
    previous: str | None,
    tier: str | None,
    level: str | None,
    reason: str,
    actor: Principal | None,
) -> None:
    await assignment_repo.add_history(
        session, uscc=uscc, commissioner_id=commissioner_id, previous=previous, tier=tier, level=level,
        reason=reason, actor=actor.sub if actor else "system:notification",
    )


async def _set_assignment(
    session: AsyncSession,
    *,
    uscc: str,
    region: str,
    tier: str,
    level: Level,
    target: str,
    commissioner_id: str,
    commissioner_name: str,
    previous: str | None,
    reason: str,
    actor: Principal | None,
) -> None:
    await assignment_repo.upsert(session, uscc, {
        "commissioner_id": commissioner_id,
        "region_code": region,
        "target_region": target,
        "tier": tier,
        "level": level,
        "status": "assigned",
        "assigned_at": func.now(),
    })
    await _history(session, uscc, commissioner_id, previous, tier, level, reason, actor)
    await record_audit(
        session, backbone, actor, "commissioner.assign", "enterprise", uscc,
        before={"commissioner_id": previous}, after={"commissioner_id": commissioner_id, "reason": reason},
    )
    payload = CommissionerAssigned(
        uscc=uscc, region_code=region, tier=tier, level=level, commissioner_id=commissioner_id,
        commissioner_name=commissioner_name, previous_commissioner_id=previous, reason=reason,
    )
    await emit(session, backbone, ASSIGNED, uscc, payload, regioncode=region)


async def reconcile(
    session: AsyncSession,
    uscc: str,
    *,
    reason: str,
    actor: Principal | None = None,
    exclude: Iterable[str] = (),
    event_key: str = "",
) -> Outcome:
    """Bring the enterprise's commissioner in line with its active titles (call inside a transaction)."""
    region = await enterprise_repo.live_region(session, uscc)
    current = await assignment_repo.current(session, uscc, for_update=True)
    previous = current["commissioner_id"] if current else None
    need = required_level(await enterprise_repo.active_tiers(session, uscc), region) if region else None
    if need is None or region is None:
        if current is None:
            return Outcome("none")
        await assignment_repo.remove(session, uscc)
        await _history(session, uscc, None, previous, None, None, reason, actor)
        await record_audit(session, backbone, actor, "commissioner.release", "enterprise", uscc,
                           before={"commissioner_id": previous}, after=None)
        if previous:
            await _notify_released(session, uscc, previous, reason, f"release:{uscc}:{event_key or reason}")
            await emit(
                session, backbone, RELEASED, uscc,
                CommissionerReleased(uscc=uscc, region_code=region, commissioner_id=previous, reason=reason),
                regioncode=region,
            )
        return Outcome("released", None)
    tier, level = need
    target = target_region(level, region)
    skip = set(exclude)
    if (
        current is not None
        and current["status"] == "assigned"
        and current["level"] == level
        and current["target_region"] == target
        and previous not in skip
        and await commissioner_repo.is_active(session, previous)
    ):
        if current["tier"] != tier:
            await assignment_repo.set_tier(session, uscc, tier)
        return Outcome("unchanged", previous)
    if current is not None and current["level"] != level and current["status"] == "assigned":
        reason = (f"{reason}(服务层级由{SERVICE_LEVEL_NAMES[current['level']]}"
                  f"调整为{SERVICE_LEVEL_NAMES[level]})")
    pick = pick_commissioner(await candidates(session, target, level), exclude=skip)
    if pick is not None:
        name = await commissioner_repo.name_of(session, pick.id)
        await _set_assignment(
            session, uscc=uscc, region=region, tier=tier, level=level, target=target,
            commissioner_id=pick.id, commissioner_name=str(name), previous=previous, reason=reason, actor=actor,
        )
        return Outcome("assigned", pick.id)
    # Nobody available: record the gap and alert the officials (once per transition into the gap).
    already = (
        current is not None
        and current["status"] == "unassigned"
        and current["level"] == level
        and current["target_region"] == target
    )
    await assignment_repo.upsert(session, uscc, {
        "commissioner_id": None, "region_code": region, "target_region": target, "tier": tier, "level": level,
        "status": "unassigned", "assigned_at": func.now(),
    })
    if already:
        return Outcome("unassigned")
    await _history(session, uscc, None, previous, tier, level, f"{reason};无可用服务专员", actor)
    await record_audit(session, backbone, actor, "commissioner.unavailable", "enterprise", uscc,
                       before={"commissioner_id": previous}, after={"target_region": target, "level": level})
    await emit(
        session, backbone, UNAVAILABLE, uscc,
        CommissionerUnavailable(uscc=uscc, region_code=region, tier=tier, level=level, alert_region=target),
        regioncode=region,
    )
    name = await enterprise_repo.name_of(session, uscc)
    variables = {
        "enterprise_name": name or uscc, "uscc": uscc, "tier_name": tier_name(tier),
        "level_name": SERVICE_LEVEL_NAMES[level], "alert_region": target,
    }
    hist_id = await assignment_repo.last_history_id(session)
    await create_notice(
        session, dedup_key=f"unavailable:{uscc}:{hist_id}", recipient=official_recipient(alert_role(level), target),
        template="commissioner_unavailable", variables=variables, uscc=uscc,
    )
    if previous:
        await _notify_released(session, uscc, previous, reason, f"release:{uscc}:{hist_id}")
    return Outcome("unassigned")


async def _notify_released(session: AsyncSession, uscc: str, commissioner_id: str, reason: str, key: str) -> None:
    found = await commissioner_recipient(session, commissioner_id)
    if found is None:
        return
    rec, cvars = found
    name = await enterprise_repo.name_of(session, uscc)
    await create_notice(
        session, dedup_key=key, recipient=rec, template="commissioner_released",
        variables={**cvars, "enterprise_name": name or uscc, "uscc": uscc, "reason": reason}, uscc=uscc,
    )


async def manual_assign(
    session: AsyncSession, uscc: str, commissioner_id: str, reason: str, actor: Principal
) -> str | None:
    """Official's reassignment; returns a Chinese error or None. The caller checks jurisdiction."""
    region = await enterprise_repo.live_region(session, uscc)
    need = required_level(await enterprise_repo.active_tiers(session, uscc), region) if region else None
    if region is None or need is None:
        return "该企业当前无有效认定,无需服务专员"
    tier, level = need
    target = target_region(level, region)
    row = await commissioner_repo.get(session, commissioner_id, for_update=True)
    if row is None or not actor.covers_region(row["region"]):
        return "not_found"
    if not row["active"]:
        return "该服务专员已停用"
    if row["level"] != level or row["region"] != target:
        return f"该企业需要{SERVICE_LEVEL_NAMES[level]}服务专员(辖区 {target}),所选专员不符"
    current = await assignment_repo.current(session, uscc, for_update=True)
    previous = current["commissioner_id"] if current else None
    if previous == commissioner_id:
        return None
    if await commissioner_repo.load(session, commissioner_id) >= row["capacity"]:
        return "capacity"
    await _set_assignment(
        session, uscc=uscc, region=region, tier=tier, level=level, target=target, commissioner_id=commissioner_id,
        commissioner_name=row["name"], previous=previous, reason=f"人工调整:{reason}", actor=actor,
    )
    return None


async def fill_gaps(session: AsyncSession, region: str, level: str, reason: str, actor: Principal | None) -> int:
    """Assign enterprises waiting for a commissioner in ``region``/``level`` (after a commissioner became available)."""
    n = 0
    for uscc in await assignment_repo.waiting(session, region, level):
        outcome = await reconcile(session, uscc, reason=reason, actor=actor)
        n += outcome.status == "assigned"
    return n


async def release_commissioner(session: AsyncSession, commissioner_id: str, actor: Principal | None) -> int:
    """A deactivated commissioner's enterprises go to someone else (or the officials are alerted)."""
    usccs = await assignment_repo.usccs_of(session, commissioner_id)
    for uscc in usccs:
        await reconcile(session, uscc, reason="原服务专员停用", actor=actor, exclude={commissioner_id},
                        event_key=f"deactivate:{commissioner_id}")
    return len(usccs)
