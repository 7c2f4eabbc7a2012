"""Policies as data: what a jurisdiction pays for, under which rule, citing which document.

Kinds:
- ``tier_reward``: one-time reward per (tier, level), with a stacking rule (``highest_only`` = 从高不重复, or
  ``cumulative``) and an upgrade rule (``pay_difference`` / ``nothing``), a migrated-in rule and a recovery rule;
- ``percentage``: a rate of an approved amount (investment, purchase), optional threshold and cap
  (per project or per enterprise over the policy's life);
- ``fixed_award``: a fixed amount per award item (未来工厂, 数字化车间 …);
- ``per_person``: per-person subsidies by category paid to training institutions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Literal

PolicyKind = Literal["tier_reward", "percentage", "fixed_award", "per_person"]
Stacking = Literal["highest_only", "cumulative"]
Upgrade = Literal["pay_difference", "nothing"]
MigratedIn = Literal["as_new", "excluded"]
Recovery = Literal["full", "none"]
CapScope = Literal["project", "enterprise"]
Comparison = Literal["gt", "ge"]

KINDS: tuple[str, ...] = ("tier_reward", "percentage", "fixed_award", "per_person")


def tier_key(tier: str, level: str | None = None) -> str:
    return f"{tier}:{level}" if level else tier


def coverage(region_code: str) -> list[str]:
    """The jurisdictions whose policies cover an enterprise: county, city, province (deduplicated)."""
    out: list[str] = []
    for code in (region_code, region_code[:4] + "00", region_code[:2] + "0000"):
        if code not in out:
            out.append(code)
    return out


@dataclass(frozen=True)
class Policy:
    """One dated policy of one jurisdiction. Amounts are Decimal yuan."""

    id: str
    name: str
    jurisdiction: str
    fund: str
    kind: PolicyKind
    effective_from: date
    effective_to: date | None = None
    document: str = ""
    # tier_reward: "tier:level" (or "tier" for any level) → amount
    tiers: dict[str, Decimal] = field(default_factory=dict)
    stacking: Stacking = "highest_only"
    upgrade: Upgrade = "pay_difference"
    migrated_in: MigratedIn = "as_new"
    recovery: Recovery = "full"
    # percentage
    rate: Decimal | None = None
    cap: Decimal | None = None
    cap_scope: CapScope = "project"
    threshold: Decimal | None = None
    threshold_comparison: Comparison = "gt"
    base_label: str = "核定金额"
    # fixed_award / per_person: item → amount
    items: dict[str, Decimal] = field(default_factory=dict)
    amounts_configured: bool = False
    note: str = ""

    def in_force(self, on: date) -> bool:
        return self.effective_from <= on and (self.effective_to is None or on <= self.effective_to)

    def tier_amount(self, tier: str, level: str | None) -> tuple[str, Decimal] | None:
        """The configured amount for a tier/level: an exact ``tier:level`` entry wins over a bare ``tier``."""
        if level and (k := tier_key(tier, level)) in self.tiers:
            return k, self.tiers[k]
        if tier in self.tiers:
            return tier, self.tiers[tier]
        return None

    def tiers_list(self) -> list[str]:
        """Tier ids (docs/events.md) the policy rewards, for ``policy.published``: ``srdi``, not ``srdi:province``."""
        return sorted({k.split(":", 1)[0] for k in self.tiers})
