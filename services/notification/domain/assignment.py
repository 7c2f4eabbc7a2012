"""The 服务专员 assignment rule (浙政办发 2022, domain.md §0b), pure and configurable per province.

Each 设区市 (city) assigns a commissioner to every 省隐形冠军, 国家小巨人 and 国家单项冠军 (企业/产品);
each 县(市、区) (county) to every 省级专精特新 and 创新型 enterprise. An enterprise holding several titles is
served at the level of its highest one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from shared.tiers import highest_tier

Level = Literal["city", "county"]

# The tier vocabulary (ids, Chinese names, rank) is shared/tiers.py; what stays here is notification's own
# configuration: which commissioner level serves which tier, and that level's name in notices.
SERVICE_LEVEL_NAMES: dict[str, str] = {"city": "市级", "county": "县级"}

ZHEJIANG_RULE: dict[str, Level] = {
    "hidden_champion": "city",
    "little_giant": "city",
    "single_champion": "city",
    "single_champion_product": "city",
    "srdi": "county",
    "innovative": "county",
}

# Per-province configuration (GB/T 2260 province code → tier → level). Unknown provinces use the default.
ASSIGNMENT_RULES: dict[str, Mapping[str, Level]] = {"330000": ZHEJIANG_RULE}
DEFAULT_RULE: Mapping[str, Level] = ZHEJIANG_RULE


def province_of(code: str) -> str:
    return code[:2] + "0000"


def city_of(code: str) -> str:
    return code[:4] + "00"


def rule_for(region_code: str, rules: Mapping[str, Mapping[str, Level]] | None = None) -> Mapping[str, Level]:
    table = ASSIGNMENT_RULES if rules is None else rules
    return table.get(province_of(region_code), DEFAULT_RULE)


def required_level(
    tiers: Iterable[str], region_code: str, rules: Mapping[str, Mapping[str, Level]] | None = None
) -> tuple[str, Level] | None:
    """(deciding tier, level) for an enterprise holding ``tiers``; None when it holds no title any more.

    A city-level tier anywhere in the set wins over a county-level one.
    """
    rule = rule_for(region_code, rules)
    held = [t for t in tiers if t in rule]
    if not held:
        return None
    city = [t for t in held if rule[t] == "city"]
    pool = city or held
    top = highest_tier(tuple(pool))
    assert top is not None
    return top, rule[top]


def target_region(level: Level, region_code: str) -> str:
    """The commissioner's region: the same county code, or the city of the enterprise's region."""
    return city_of(region_code) if level == "city" else region_code


def alert_role(level: Level) -> str:
    """Which officials are alerted when no commissioner is available."""
    return "city_official" if level == "city" else "county_official"


@dataclass(frozen=True)
class Candidate:
    id: str
    load: int
    capacity: int
    active: bool = True


def pick_commissioner(candidates: Sequence[Candidate], exclude: Iterable[str] = ()) -> Candidate | None:
    """Least-loaded active commissioner with spare capacity (ties: lowest relative load, then id)."""
    skip = set(exclude)
    free = [c for c in candidates if c.active and c.id not in skip and c.load < c.capacity]
    if not free:
        return None
    return min(free, key=lambda c: (c.load, c.load / c.capacity if c.capacity else 1.0, c.id))
