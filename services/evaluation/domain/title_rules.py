"""Which rule set decides a title: tier + title level → rule set, per province, as explicit data (issue 15).

A title's *level* (the government that recognises it) and a rule set's *jurisdiction* are different things: a
province-level 专精特新 title in Zhejiang is decided under the national standard (MIIT) applied by the province
(with the province's 特色化 items), a county-level one under the county's own rule set. Each province states
this in ``rulesets/title_rules/<province code>.yaml``::

    province: "330000"
    name: 浙江省
    titles:
      srdi:
        province: [MIIT-2026-2-srdi, MIIT-2022-63-srdi]
        county: [YH-2022-district-srdi]

For a decision date and an enterprise, the deciding rule set is the first listed one that is in force on that
date and covers the enterprise's region (``selection.in_force``). A tier and level the province does not list
has no deciding rule set. Pure: the files are read by ``app/title_rules.py`` and passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from services.evaluation.domain.rules import RuleSet
from services.evaluation.domain.selection import in_force

Level = str
Tier = str


class TitleRules(BaseModel):
    """One province's mapping tier → title level → rule-set ids, in order of preference."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    province: str = Field(pattern=r"^\d{2}0000$", description="省级行政区划代码")
    name: str = Field("", description="省份名称")
    titles: dict[Tier, dict[Level, tuple[str, ...]]] = Field(description="称号层级 → 认定级别 → 规则集编号(按优先顺序)")

    def listed(self, tier: str, level: str) -> tuple[str, ...]:
        return self.titles.get(tier, {}).get(level, ())


def province_of(region_code: str) -> str:
    return region_code[:2] + "0000"


def deciding_ruleset(
    rules: Mapping[str, TitleRules],
    rulesets: Iterable[RuleSet],
    *,
    tier: str,
    level: str,
    region_code: str,
    on: date,
) -> RuleSet | None:
    """The rule set that decides a ``tier`` title of ``level`` for an enterprise in ``region_code`` on ``on``:
    the first one its province lists for (tier, level) that is in force then and covers the region."""
    province = rules.get(province_of(region_code))
    if province is None:
        return None
    listed = province.listed(tier, level)
    if not listed:
        return None
    candidates = {rs.id: rs for rs in in_force(rulesets, on, region_code, tier)}
    for rid in listed:
        if rid in candidates:
            return candidates[rid]
    return None
