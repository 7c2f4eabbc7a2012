"""The tier vocabulary of the gradient-cultivation ladder, written once for every service.

创新型中小企业 → 专精特新中小企业 → 隐形冠军 → 专精特新“小巨人” → 制造业单项冠军 (企业/产品). Tier ids are the
identifiers used in the API, the events and the rule sets; the Chinese names are what users read. Title levels
(国家级/省级/市级/县级) are the level of the government that recognises a title, not a rule set's jurisdiction.
"""

from __future__ import annotations

from typing import Final, Literal

Tier = Literal["innovative", "srdi", "little_giant", "hidden_champion", "single_champion", "single_champion_product"]
Level = Literal["national", "province", "city", "county"]

# Ladder order, lowest first (the order officials read the programme in).
TIERS: Final[tuple[Tier, ...]] = (
    "innovative",
    "srdi",
    "hidden_champion",
    "little_giant",
    "single_champion_product",
    "single_champion",
)

# Highest first: an enterprise holding several titles is served and rewarded by its highest (从高、不重复).
TIER_RANK: Final[tuple[Tier, ...]] = (
    "single_champion",
    "little_giant",
    "hidden_champion",
    "single_champion_product",
    "srdi",
    "innovative",
)

TIER_NAMES: Final[dict[str, str]] = {
    "innovative": "创新型中小企业",
    "srdi": "专精特新中小企业",
    "little_giant": "专精特新“小巨人”企业",
    "hidden_champion": "隐形冠军企业",
    "single_champion": "制造业单项冠军企业",
    "single_champion_product": "制造业单项冠军产品",
}

LEVELS: Final[tuple[Level, ...]] = ("national", "province", "city", "county")

LEVEL_NAMES: Final[dict[str, str]] = {
    "national": "国家级",
    "province": "省级",
    "city": "市级",
    "county": "县(市、区)级",
}


def tier_name(tier: str) -> str:
    """The Chinese name of a tier id (the id itself when unknown)."""
    return TIER_NAMES.get(tier, tier)


def tier_label(tier: str, level: str | None = None) -> str:
    """``省级专精特新中小企业``: the level's name before the tier's, or the tier's alone."""
    name = tier_name(tier)
    return f"{LEVEL_NAMES.get(level, level)}{name}" if level else name


def tier_rank(tier: str) -> int:
    """0 for the highest tier; unknown tiers rank below every known one."""
    return TIER_RANK.index(tier) if tier in TIER_RANK else len(TIER_RANK)


def highest_tier(tiers: list[str] | tuple[str, ...] | set[str] | frozenset[str]) -> str | None:
    known = [t for t in tiers if t in TIER_NAMES]
    return min(known, key=tier_rank) if known else None
