"""精准服务 gap advice: an evaluation that finds an enterprise near a tier it does not hold tells it — in the
inbox, by SMS only if it opted in — what is missing in yuan and what the tier would bring under its county's,
city's and province's policies, once per enterprise, tier and year; its commissioner sees it too.

Reads what the evaluation publishes (``evaluation.completed`` results with ``gaps``/``unmet``/``level``) and the
rewards finance publishes with its policies (``policy.published`` ``rewards``), kept in ``policy_rewards``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.notification.app.commissioners import visible
from services.notification.app.notices import commissioner_recipient, create_notice, enterprise_recipient
from services.notification.db import assignments as assignment_repo
from services.notification.db import enterprises as enterprise_repo
from services.notification.db import gap_advice as advice_repo
from services.notification.db import notices as notice_repo
from services.notification.domain.assignment import city_of, province_of
from services.notification.domain.gap_advice import (
    AdviceConfig,
    GapItem,
    Nearness,
    Reward,
    advice_text,
    nearness,
    reward_sentence,
    yuan,
)
from services.notification.events.contracts import EvalResult, EvaluationCompleted, PolicyPublished
from shared.auth import Principal
from shared.tiers import TIER_NAMES, tier_label

_WHOSE = {"county": "县(市、区)", "city": "市", "province": "省"}


async def record_rewards(session: AsyncSession, p: PolicyPublished) -> None:
    """Keep the one-time rewards a published policy grants per tier (nothing when it publishes none)."""
    await advice_repo.replace_rewards(session, p.policy_id, [
        {"jurisdiction": p.jurisdiction, "tier": r.tier, "level": r.level, "amount": r.amount,
         "effective_from": p.effective_from, "effective_to": p.effective_to}
        for r in p.rewards
    ])


async def _rewards(session: AsyncSession, region: str, tier: str, level: str | None, on: date) -> list[Reward]:
    """The largest in-force reward of each of the county, city and province (从高、不重复 within one)."""
    places = {"county": region, "city": city_of(region), "province": province_of(region)}
    rows = await advice_repo.rewards_for(session, list(set(places.values())), tier, level, on)
    out: list[Reward] = []
    for whose, code in places.items():
        best = next((r for r in rows if r["jurisdiction"] == code), None)
        if best is not None and (whose == "county" or code != region):
            out.append(Reward(_WHOSE[whose], best["name"] or best["policy_id"], Decimal(best["amount"])))
    return out


def _gaps(r: EvalResult) -> list[GapItem]:
    return [GapItem(code=g.code, description=g.description, metric=g.metric, required=g.required,
                    yuan_needed=g.yuan_needed) for g in r.gaps or []]


def _nearest(p: EvaluationCompleted, held: set[str], config: AdviceConfig) -> dict[str, tuple[EvalResult, Nearness]]:
    """Per tier the enterprise does not hold, its nearest not-eligible result within the configured distance
    (none for a tier where some rule set already finds it eligible)."""
    eligible = {r.tier for r in p.results if r.eligible}
    best: dict[str, tuple[EvalResult, Nearness]] = {}
    for r in p.results:
        if r.tier in held or r.tier in eligible or r.tier not in TIER_NAMES:
            continue
        near = nearness(r.eligible, r.unmet, _gaps(r), config)
        if near is not None and (r.tier not in best or near.sort_key < best[r.tier][1].sort_key):
            best[r.tier] = (r, near)
    return best


async def advise(session: AsyncSession, p: EvaluationCompleted, config: AdviceConfig) -> int:
    """Send the gap advice this evaluation calls for; returns how many (enterprise, tier) advices were new."""
    ent = await enterprise_repo.get(session, p.uscc)
    if ent is None or ent["deregistered"]:
        return 0
    region = ent["region_code"]
    held = set(await enterprise_repo.active_tiers(session, p.uscc))
    on = p.as_of or datetime.now(UTC).date()
    sent = 0
    for tier, (r, near) in sorted(_nearest(p, held, config).items()):
        label = tier_label(tier, r.level)
        gaps = _gaps(r)
        rewards = await _rewards(session, region, tier, r.level, on)
        text = advice_text(label, gaps)
        reward_text = reward_sentence(label, rewards)
        claimed = await advice_repo.claim(session, {
            "uscc": p.uscc, "tier": tier, "year": p.year, "region_code": region, "level": r.level,
            "ruleset_id": r.ruleset_id, "unmet": near.unmet, "yuan_gap": near.yuan_gap,
            "reward": sum((x.amount for x in rewards), Decimal(0)) if rewards else None, "advice": text,
            "gaps": [{"code": g.code, "metric": g.metric, "yuan_needed": None if g.yuan_needed is None
                      else str(g.yuan_needed), "description": g.description} for g in gaps],
        })
        if not claimed:
            continue
        sent += 1
        variables: dict[str, Any] = {"year": p.year, "tier_label": label, "unmet": near.unmet, "advice": text,
                                     "reward": reward_text,
                                     "yuan_gap": "" if near.yuan_gap is None else yuan(near.yuan_gap)}
        rec, evars = await enterprise_recipient(session, p.uscc)
        pref = await notice_repo.preferences_of(session, rec.key)
        channels = ("sms",) if pref is not None and pref["gap_advice_sms"] else ()
        key = f"gap:{p.uscc}:{tier}:{p.year}"
        notice_id = await create_notice(session, dedup_key=key, recipient=rec, template="gap_advice",
                                        variables={**evars, **variables}, uscc=p.uscc, channels=channels, tier=tier)
        await advice_repo.set_notice(session, p.uscc, tier, p.year, notice_id)
        cid = await assignment_repo.assigned_commissioner(session, p.uscc)
        found = await commissioner_recipient(session, cid) if cid else None
        if found is not None:
            await create_notice(session, dedup_key=key, recipient=found[0], template="gap_advice_commissioner",
                                variables={**evars, **variables, **found[1]}, uscc=p.uscc, channels=(),
                                tier=tier)
    return sent


async def near_qualifying(
    session: AsyncSession, principal: Principal, commissioner_id: str, year: int | None
) -> list[dict[str, Any]]:
    """The enterprises in the commissioner's care that were advised, nearest first; for the commissioner
    itself or an official of its region (404 otherwise)."""
    await visible(session, principal, commissioner_id)
    return [
        {"uscc": r["uscc"], "name": r["name"], "region_code": r["region_code"], "tier": r["tier"],
         "tier_name": tier_label(r["tier"], r["level"]), "level": r["level"], "year": r["year"],
         "unmet": r["unmet"], "yuan_gap": r["yuan_gap"], "reward": r["reward"], "advice": r["advice"],
         "advised_at": r["created_at"]}
        for r in await advice_repo.of_commissioner(session, commissioner_id, year)
    ]
