"""What the rules engine knows about one enterprise: its reported indicators plus the facts that are not
annual indicators (titles held, founding date, region, industry).

Pure data; no I/O. The indicator vocabulary is ``shared.indicators.IndicatorSet`` (the contract with registry).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.indicators import IndicatorSet, stored_indicators


class HeldTitle(BaseModel):
    """A title (认定称号) the enterprise holds or held: tier + level with its validity window."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tier: str = Field(description="innovative | srdi | little_giant | hidden_champion | single_champion | …")
    level: str = Field(description="national | province | city | county")
    valid_from: date = Field(description="有效期起 (公告日)")
    valid_to: date = Field(description="有效期至 (含)")
    revoked: bool = Field(False, description="已撤销")

    def valid_at(self, when: date) -> bool:
        return not self.revoked and self.valid_from <= when <= self.valid_to


class EnterpriseFacts(BaseModel):
    """Input of one evaluation."""

    model_config = ConfigDict(extra="forbid")

    indicators: IndicatorSet
    titles: list[HeldTitle] = Field(default_factory=list)
    founded_on: date | None = Field(None, description="成立日期")
    region_code: str | None = Field(None, description="注册地行政区划代码 (GB/T 2260, 6位)")
    industry_code: str | None = Field(None, description="国民经济行业分类代码 (GB/T 4754)")
    is_manufacturing: bool | None = Field(None, description="属于制造业 (门类C)")
    reporting_year: int | None = Field(None, description="指标所属年度 (上年度 Y); 缺省为 as_of 年份 − 1")
    is_recheck: bool = Field(False, description="复核 (而非新申请)")


def stored_facts(row: Sequence[Any]) -> EnterpriseFacts:
    """The facts of a stored latest-report row, as the re-evaluation job and the policy simulation read them:
    ``(uscc, region, year, founded_on, industry, is_manufacturing, indicators JSON, titles, …)`` with titles as
    ``(tier, level, valid_from, valid_to, revoked)``. Validated by the constructor (in pydantic-core: cheaper
    than ``model_construct``'s Python loop over the fields); the indicators by ``stored_indicators``."""
    _, region, year, founded_on, industry, is_mfg, indicators, titles = row[:8]
    return EnterpriseFacts(
        indicators=stored_indicators(indicators),
        titles=[HeldTitle(tier=t[0], level=t[1], valid_from=t[2], valid_to=t[3], revoked=t[4]) for t in titles],
        founded_on=founded_on,
        region_code=region,
        industry_code=industry,
        is_manufacturing=is_mfg,
        reporting_year=year,
        is_recheck=False,
    )
