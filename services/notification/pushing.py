"""精准推送: push a policy to each eligible enterprise of its jurisdiction, at most once per (enterprise, policy)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notification.db.models import eligibilities, enterprises, policies, policy_pushes, recognitions
from services.notification.domain.policy import match_reason
from services.notification.notify import create_notice, enterprise_recipient


def _prefix(jurisdiction: str) -> str:
    if jurisdiction.endswith("0000"):
        return jurisdiction[:2]
    if jurisdiction.endswith("00"):
        return jurisdiction[:4]
    return jurisdiction


async def record_eligibility(session: AsyncSession, uscc: str, year: int, results: Sequence[tuple[str, bool]]) -> None:
    for tier, eligible in results:
        stmt = insert(eligibilities).values(uscc=uscc, tier=tier, year=year, eligible=eligible)
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["uscc", "tier"], set_={"year": year, "eligible": eligible},
                where=eligibilities.c.year <= stmt.excluded.year,
            )
        )


async def _tiers(session: AsyncSession, uscc: str) -> tuple[list[str], list[str]]:
    held = (
        await session.execute(
            select(recognitions.c.tier).where(recognitions.c.uscc == uscc, recognitions.c.status == "active")
        )
    ).scalars().all()
    eligible = (
        await session.execute(
            select(eligibilities.c.tier).where(eligibilities.c.uscc == uscc, eligibilities.c.eligible)
        )
    ).scalars().all()
    return list(held), list(eligible)


async def _push(session: AsyncSession, uscc: str, policy: dict[str, Any], reason: str) -> bool:
    inserted = (
        await session.execute(
            insert(policy_pushes).values(uscc=uscc, policy_id=policy["policy_id"], reason=reason)
            .on_conflict_do_nothing().returning(policy_pushes.c.uscc)
        )
    ).first()
    if inserted is None:
        return False
    rec, evars = await enterprise_recipient(session, uscc)
    notice_id = await create_notice(
        session, dedup_key=f"policy:{policy['policy_id']}", recipient=rec, template="policy_push",
        variables={**evars, "policy_name": policy["name"], "reason": reason, "summary": policy.get("summary") or ""},
        uscc=uscc,
    )
    await session.execute(
        update(policy_pushes).where(policy_pushes.c.uscc == uscc, policy_pushes.c.policy_id == policy["policy_id"])
        .values(notice_id=notice_id)
    )
    return True


async def push_policy_published(session: AsyncSession, policy: dict[str, Any]) -> int:
    tiers: list[str] = list(policy.get("tiers") or [])
    values: dict[str, Any] = {k: policy.get(k) for k in ("name", "jurisdiction", "kind", "effective_from",
                                                         "effective_to", "summary")}
    values["tiers"] = tiers
    await session.execute(
        insert(policies).values(policy_id=policy["policy_id"], **values)
        .on_conflict_do_update(index_elements=["policy_id"], set_=values)
    )
    usccs = (
        await session.execute(
            select(enterprises.c.uscc).where(
                enterprises.c.region_code.like(_prefix(policy["jurisdiction"]) + "%"),
                enterprises.c.deregistered.is_(False),
            ).order_by(enterprises.c.uscc)
        )
    ).scalars().all()
    today = datetime.now(UTC).date()
    pushed = 0
    for uscc in usccs:
        region = (await session.execute(select(enterprises.c.region_code).where(enterprises.c.uscc == uscc))).scalar()
        held, eligible = await _tiers(session, uscc)
        reason = match_reason(
            jurisdiction=policy["jurisdiction"], policy_tiers=tiers, region_code=str(region),
            held_tiers=held, eligible_tiers=eligible, effective_to=policy.get("effective_to"), today=today,
        )
        if reason and await _push(session, uscc, policy, reason):
            pushed += 1
    return pushed


async def push_for_enterprise(session: AsyncSession, uscc: str) -> int:
    """An enterprise became eligible (recognition or evaluation): push the known policies it now matches."""
    ent = (await session.execute(select(enterprises).where(enterprises.c.uscc == uscc))).mappings().first()
    if ent is None or ent["deregistered"]:
        return 0
    held, eligible = await _tiers(session, uscc)
    today = datetime.now(UTC).date()
    rows = (await session.execute(select(policies).order_by(policies.c.policy_id))).mappings().all()
    pushed = 0
    for pol in rows:
        if not pol["tiers"]:
            continue  # jurisdiction-wide policies go out on publication only
        reason = match_reason(
            jurisdiction=pol["jurisdiction"], policy_tiers=pol["tiers"], region_code=ent["region_code"],
            held_tiers=held, eligible_tiers=eligible, effective_to=pol["effective_to"], today=today,
        )
        if reason and await _push(session, uscc, dict(pol), reason):
            pushed += 1
    return pushed
