"""精准推送: push a policy to each eligible enterprise of its jurisdiction, at most once per (enterprise, policy)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.notification.app.notices import create_notice, enterprise_recipient
from services.notification.db import enterprises as enterprise_repo
from services.notification.db import policies as policy_repo
from services.notification.domain.policy import match_reason


async def _tiers(session: AsyncSession, uscc: str) -> tuple[list[str], list[str]]:
    return await enterprise_repo.active_tiers(session, uscc), await enterprise_repo.eligible_tiers(session, uscc)


async def _push(session: AsyncSession, uscc: str, policy: dict[str, Any], reason: str) -> bool:
    if not await policy_repo.claim_push(session, uscc, policy["policy_id"], reason):
        return False
    rec, evars = await enterprise_recipient(session, uscc)
    notice_id = await create_notice(
        session, dedup_key=f"policy:{policy['policy_id']}", recipient=rec, template="policy_push",
        variables={**evars, "policy_name": policy["name"], "reason": reason, "summary": policy.get("summary") or ""},
        uscc=uscc,
    )
    await policy_repo.set_push_notice(session, uscc, policy["policy_id"], notice_id)
    return True


async def push_policy_published(session: AsyncSession, policy: dict[str, Any]) -> int:
    tiers: list[str] = list(policy.get("tiers") or [])
    values: dict[str, Any] = {k: policy.get(k) for k in ("name", "jurisdiction", "kind", "effective_from",
                                                         "effective_to", "summary")}
    values["tiers"] = tiers
    await policy_repo.upsert(session, policy["policy_id"], values)
    today = datetime.now(UTC).date()
    pushed = 0
    for uscc in await enterprise_repo.live_in(session, policy["jurisdiction"]):
        region = await enterprise_repo.region_of(session, uscc)
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
    ent = await enterprise_repo.get(session, uscc)
    if ent is None or ent["deregistered"]:
        return 0
    held, eligible = await _tiers(session, uscc)
    if not held and not eligible:
        return 0  # a tier policy matches a tier held or eligible for (domain.policy.match_reason): none here
    today = datetime.now(UTC).date()
    pushed = 0
    for pol in await policy_repo.all_policies(session):
        if not pol["tiers"]:
            continue  # jurisdiction-wide policies go out on publication only
        reason = match_reason(
            jurisdiction=pol["jurisdiction"], policy_tiers=pol["tiers"], region_code=ent["region_code"],
            held_tiers=held, eligible_tiers=eligible, effective_to=pol["effective_to"], today=today,
        )
        if reason and await _push(session, uscc, dict(pol), reason):
            pushed += 1
    return pushed
