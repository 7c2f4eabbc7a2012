"""Applying the assignment rule to the database: assign, reassign, release, alert; with history and events."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import Field
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notification.db.models import (
    assignment_history,
    assignments,
    backbone,
    commissioners,
    enterprises,
    recognitions,
)
from services.notification.domain.assignment import (
    TIER_NAMES,
    Candidate,
    Level,
    alert_role,
    pick_commissioner,
    required_level,
    target_region,
)
from services.notification.notify import commissioner_recipient, create_notice, official_recipient
from shared.audit import record_audit
from shared.auth import Principal
from shared.events.envelope import EventPayload
from shared.events.outbox import emit

ASSIGNED = "zjtx.notification.commissioner.assigned.v1"
UNAVAILABLE = "zjtx.notification.commissioner.unavailable.v1"
RELEASED = "zjtx.notification.commissioner.released.v1"
LEVEL_NAMES = {"city": "市级", "county": "县级"}


class CommissionerAssigned(EventPayload):
    uscc: str
    region_code: str
    tier: str
    level: str = Field(description="服务专员层级 city/county")
    commissioner_id: str
    commissioner_name: str
    previous_commissioner_id: str | None
    reason: str


class CommissionerUnavailable(EventPayload):
    uscc: str
    region_code: str
    tier: str
    level: str
    alert_region: str


@dataclass(frozen=True)
class Outcome:
    status: str  # unchanged / assigned / unassigned / released / none
    commissioner_id: str | None = None


async def active_tiers(session: AsyncSession, uscc: str) -> list[str]:
    rows = await session.execute(
        select(recognitions.c.tier).where(recognitions.c.uscc == uscc, recognitions.c.status == "active")
    )
    return [r[0] for r in rows]


async def _region_of(session: AsyncSession, uscc: str) -> str | None:
    """The enterprise's region; None once it is deregistered (it needs no commissioner any more)."""
    row = (
        await session.execute(select(enterprises.c.region_code, enterprises.c.deregistered)
                              .where(enterprises.c.uscc == uscc))
    ).first()
    return None if row is None or row.deregistered else str(row.region_code)


async def candidates(session: AsyncSession, region: str, level: str) -> list[Candidate]:
    """Active commissioners of ``region``/``level`` with their current load; rows locked to serialise capacity."""
    rows = (
        await session.execute(
            select(commissioners.c.id, commissioners.c.capacity, commissioners.c.active)
            .where(commissioners.c.region == region, commissioners.c.level == level, commissioners.c.active)
            .order_by(commissioners.c.id)
            .with_for_update()
        )
    ).all()
    if not rows:
        return []
    loads: dict[str, int] = dict(
        (
            await session.execute(
                select(assignments.c.commissioner_id, func.count())
                .where(assignments.c.commissioner_id.in_([r.id for r in rows]))
                .group_by(assignments.c.commissioner_id)
            )
        ).all()
    )
    return [Candidate(r.id, int(loads.get(r.id, 0)), r.capacity, r.active) for r in rows]


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
    await session.execute(
        assignment_history.insert().values(
            uscc=uscc,
            commissioner_id=commissioner_id,
            previous_commissioner_id=previous,
            tier=tier,
            level=level,
            reason=reason,
            actor=actor.sub if actor else "system:notification",
        )
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
    values = {
        "commissioner_id": commissioner_id,
        "region_code": region,
        "target_region": target,
        "tier": tier,
        "level": level,
        "status": "assigned",
        "assigned_at": func.now(),
    }
    await session.execute(
        insert(assignments).values(uscc=uscc, **values).on_conflict_do_update(index_elements=["uscc"], set_=values)
    )
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
    region = await _region_of(session, uscc)
    current = (
        await session.execute(select(assignments).where(assignments.c.uscc == uscc).with_for_update())
    ).mappings().first()
    previous = current["commissioner_id"] if current else None
    need = required_level(await active_tiers(session, uscc), region) if region else None
    if need is None or region is None:
        if current is None:
            return Outcome("none")
        await session.execute(delete(assignments).where(assignments.c.uscc == uscc))
        await _history(session, uscc, None, previous, None, None, reason, actor)
        await record_audit(session, backbone, actor, "commissioner.release", "enterprise", uscc,
                           before={"commissioner_id": previous}, after=None)
        if previous:
            await _notify_released(session, uscc, previous, reason, f"release:{uscc}:{event_key or reason}")
            await emit(
                session, backbone, RELEASED, uscc,
                {"uscc": uscc, "region_code": region, "commissioner_id": previous, "reason": reason},
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
    ):
        active = (
            await session.execute(select(commissioners.c.active).where(commissioners.c.id == previous))
        ).scalar()
        if active:
            if current["tier"] != tier:
                await session.execute(update(assignments).where(assignments.c.uscc == uscc).values(tier=tier))
            return Outcome("unchanged", previous)
    if current is not None and current["level"] != level and current["status"] == "assigned":
        reason = f"{reason}(服务层级由{LEVEL_NAMES[current['level']]}调整为{LEVEL_NAMES[level]})"
    pick = pick_commissioner(await candidates(session, target, level), exclude=skip)
    if pick is not None:
        name = (await session.execute(select(commissioners.c.name).where(commissioners.c.id == pick.id))).scalar()
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
    values = {
        "commissioner_id": None, "region_code": region, "target_region": target, "tier": tier, "level": level,
        "status": "unassigned", "assigned_at": func.now(),
    }
    await session.execute(
        insert(assignments).values(uscc=uscc, **values).on_conflict_do_update(index_elements=["uscc"], set_=values)
    )
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
    name = (await session.execute(select(enterprises.c.name).where(enterprises.c.uscc == uscc))).scalar()
    variables = {
        "enterprise_name": name or uscc, "uscc": uscc, "tier_name": TIER_NAMES.get(tier, tier),
        "level_name": LEVEL_NAMES[level], "alert_region": target,
    }
    hist_id = (await session.execute(select(func.max(assignment_history.c.id)))).scalar()
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
    name = (await session.execute(select(enterprises.c.name).where(enterprises.c.uscc == uscc))).scalar()
    await create_notice(
        session, dedup_key=key, recipient=rec, template="commissioner_released",
        variables={**cvars, "enterprise_name": name or uscc, "uscc": uscc, "reason": reason}, uscc=uscc,
    )


async def manual_assign(
    session: AsyncSession, uscc: str, commissioner_id: str, reason: str, actor: Principal
) -> str | None:
    """Official's reassignment; returns a Chinese error or None. The caller checks jurisdiction."""
    region = await _region_of(session, uscc)
    need = required_level(await active_tiers(session, uscc), region) if region else None
    if region is None or need is None:
        return "该企业当前无有效认定,无需服务专员"
    tier, level = need
    target = target_region(level, region)
    row = (
        await session.execute(select(commissioners).where(commissioners.c.id == commissioner_id).with_for_update())
    ).mappings().first()
    if row is None or not actor.covers_region(row["region"]):
        return "not_found"
    if not row["active"]:
        return "该服务专员已停用"
    if row["level"] != level or row["region"] != target:
        return f"该企业需要{LEVEL_NAMES[level]}服务专员(辖区 {target}),所选专员不符"
    current = (
        await session.execute(select(assignments).where(assignments.c.uscc == uscc).with_for_update())
    ).mappings().first()
    previous = current["commissioner_id"] if current else None
    if previous == commissioner_id:
        return None
    load = (
        await session.execute(select(func.count()).where(assignments.c.commissioner_id == commissioner_id))
    ).scalar_one()
    if load >= row["capacity"]:
        return "capacity"
    await _set_assignment(
        session, uscc=uscc, region=region, tier=tier, level=level, target=target, commissioner_id=commissioner_id,
        commissioner_name=row["name"], previous=previous, reason=f"人工调整:{reason}", actor=actor,
    )
    return None


async def fill_gaps(session: AsyncSession, region: str, level: str, reason: str, actor: Principal | None) -> int:
    """Assign enterprises waiting for a commissioner in ``region``/``level`` (after a commissioner became available)."""
    waiting = (
        await session.execute(
            select(assignments.c.uscc).where(
                assignments.c.status == "unassigned", assignments.c.target_region == region,
                assignments.c.level == level,
            ).order_by(assignments.c.uscc)
        )
    ).scalars().all()
    n = 0
    for uscc in waiting:
        outcome = await reconcile(session, uscc, reason=reason, actor=actor)
        n += outcome.status == "assigned"
    return n


async def release_commissioner(session: AsyncSession, commissioner_id: str, actor: Principal | None) -> int:
    """A deactivated commissioner's enterprises go to someone else (or the officials are alerted)."""
    usccs = (
        await session.execute(select(assignments.c.uscc).where(assignments.c.commissioner_id == commissioner_id))
    ).scalars().all()
    for uscc in usccs:
        await reconcile(session, uscc, reason="原服务专员停用", actor=actor, exclude={commissioner_id},
                        event_key=f"deactivate:{commissioner_id}")
    return len(usccs)
