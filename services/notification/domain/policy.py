"""精准推送: does a published policy match an enterprise? Pure, returns the Chinese reason or None."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from shared.tiers import tier_name


def region_covers(territory: str, code: str) -> bool:
    if len(territory) != 6 or len(code) != 6:
        return False
    if territory.endswith("0000"):
        return code[:2] == territory[:2]
    if territory.endswith("00"):
        return code[:4] == territory[:4]
    return code == territory


def match_reason(
    *,
    jurisdiction: str,
    policy_tiers: Iterable[str],
    region_code: str,
    held_tiers: Iterable[str] = (),
    eligible_tiers: Iterable[str] = (),
    effective_to: date | None = None,
    today: date | None = None,
) -> str | None:
    """Reason the policy applies, or None. Recognised tiers come first, then tiers the enterprise is eligible for.

    A policy with no tiers applies to every known enterprise of its jurisdiction.
    """
    if not region_covers(jurisdiction, region_code):
        return None
    if effective_to is not None and today is not None and effective_to < today:
        return None
    wanted = list(policy_tiers)
    if not wanted:
        return f"贵企业位于政策适用地区 {jurisdiction}"
    held = [t for t in wanted if t in set(held_tiers)]
    if held:
        return "贵企业已获认定:" + "、".join(tier_name(t) for t in held)
    eligible = [t for t in wanted if t in set(eligible_tiers)]
    if eligible:
        return "贵企业经评估符合条件:" + "、".join(tier_name(t) for t in eligible)
    return None
