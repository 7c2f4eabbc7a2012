"""The rule-set schema: a published standard as dated, versioned data (decision 1).

A rule set is written in YAML (``services/evaluation/rulesets/*.yaml``) and validated by these models.

Conditions use a small vocabulary, readable by a policy officer::

    {metric: rd_ratio, op: ">=", value: "3%"}          # a metric compared with a threshold
    {metric: own_brand}                                 # a yes/no metric must be 是
    {all: [cond, cond]}  /  {any: [cond, cond]}         # groups (全部满足 / 满足其一)
    {honour: [high_tech_enterprise, ip_demo]}           # holds one of these honours, valid at the date
    {award: {levels: [national], max_rank: 3, within_years: 3}}   # 科技奖励
    {maker_china: {max_top: 500, within_years: 3}}      # 创客中国全国企业组名次
    {title: {tier: srdi, levels: [province]}}           # holds a title valid at the date

Thresholds may be written as ``"3%"`` (→ 0.03), ``"100万"`` / ``"1.5亿"`` (yuan), plain numbers, yes/no
or text (``in``/``not_in`` take a list). Metric names are in ``rule_metrics.REGISTRY``; ``local.<code>``
reads a 地方特色化 indicator.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from services.evaluation.domain.rule_metrics import get_metric
from shared.indicators import AwardLevel, HonourCode
from shared.tiers import LEVEL_NAMES as LEVEL_NAMES  # the tier vocabulary, written once in shared
from shared.tiers import TIER_NAMES as TIER_NAMES
from shared.tiers import Level, Tier

Op = Literal[">=", ">", "<=", "<", "==", "!=", "in", "not_in", "present", "startswith"]
BandEdge = Literal["favourable", "strict"]

_AMOUNT = re.compile(r"^\s*[¥￥]?\s*(-?\d+(?:\.\d+)?)\s*(%|万|万元|亿|亿元|元)?\s*$")


def parse_amount(raw: object) -> object:
    """'3%' → Decimal('0.03'); '100万' → 1000000; '1.5亿' → 150000000; numbers → Decimal; else unchanged."""
    if isinstance(raw, bool) or raw is None:
        return raw
    if isinstance(raw, int):
        return Decimal(raw)
    if isinstance(raw, float):
        return Decimal(str(raw))
    if isinstance(raw, str):
        m = _AMOUNT.match(raw)
        if not m:
            return raw
        try:
            num = Decimal(m.group(1))
        except InvalidOperation:  # pragma: no cover - regex guarantees a number
            return raw
        suffix = m.group(2)
        if suffix == "%":
            return num / 100
        if suffix in ("万", "万元"):
            return num * 10_000
        if suffix in ("亿", "亿元"):
            return num * 100_000_000
        return num
    return raw


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class AwardSpec(_Model):
    levels: list[AwardLevel] = Field(description="认可的奖励级别")
    max_rank: int | None = Field(None, ge=1, description="获奖单位排名不低于第几名")
    within_years: int = Field(3, ge=1, description="近N年 (含指标年度)")


class MakerChinaSpec(_Model):
    max_top: int = Field(ge=1, description="全国N强企业组 (50, 500)")
    within_years: int = Field(3, ge=1)


class TitleSpec(_Model):
    tier: Tier
    levels: list[Level] | None = None


class Condition(_Model):
    """A condition node. Exactly one of: metric, any, all, honour, award, maker_china, title."""

    code: str | None = None
    name: str | None = None
    category: str | None = None
    source: str | None = None
    unconfirmed: bool = False
    note: str | None = None
    selector: bool = Field(
        False, description="选择适用档位的条件 (如营收区间): 不满足时该分支不适用, 差距分析跳过该分支"
    )

    metric: str | None = None
    op: Op | None = None
    value: Decimal | bool | str | list[str] | None = None
    any_: list[Condition] | None = Field(None, alias="any")
    all_: list[Condition] | None = Field(None, alias="all")
    honour: list[HonourCode] | None = None
    award: AwardSpec | None = None
    maker_china: MakerChinaSpec | None = None
    title: TitleSpec | None = None

    @field_validator("value", mode="before")
    @classmethod
    def _parse_value(cls, v: object, info: ValidationInfo) -> object:
        if isinstance(v, list):
            return [str(x) for x in v]
        op = info.data.get("op")
        if op in (">=", ">", "<=", "<"):
            return parse_amount(v)
        m = get_metric(str(info.data.get("metric") or ""))
        if op == "startswith" or (m is not None and m.unit == "text" and not isinstance(v, bool)):
            return v if v is None else str(v)
        return parse_amount(v)

    @model_validator(mode="after")
    def _one_kind(self) -> Condition:
        kinds = [
            k
            for k, v in (
                ("metric", self.metric),
                ("any", self.any_),
                ("all", self.all_),
                ("honour", self.honour),
                ("award", self.award),
                ("maker_china", self.maker_china),
                ("title", self.title),
            )
            if v is not None
        ]
        if len(kinds) != 1:
            raise ValueError(
                f"条件必须且只能有一种形式 (metric/any/all/honour/award/maker_china/title), 实际: {kinds or '无'}"
            )
        if self.metric is not None:
            m = get_metric(self.metric)
            if m is None:
                raise ValueError(f"未知指标 metric '{self.metric}'")
            if self.op is None:
                if self.value is None:
                    self.op, self.value = "==", True
                else:
                    self.op = "=="
            if self.op in ("in", "not_in"):
                if not isinstance(self.value, list):
                    raise ValueError(f"op '{self.op}' 需要列表 value")
            elif self.op in (">=", ">", "<=", "<"):
                if not isinstance(self.value, Decimal):
                    raise ValueError(f"op '{self.op}' 需要数值 value (如 3%、100万、2), 实际: {self.value!r}")
            elif self.op == "startswith":
                if not isinstance(self.value, str):
                    raise ValueError("op 'startswith' 需要文本 value")
            elif self.op == "present":
                pass
            elif self.value is None:
                raise ValueError(f"op '{self.op}' 需要 value")
        elif self.op is not None or self.value is not None:
            raise ValueError("op/value 只能与 metric 一起使用")
        if (self.any_ is not None and not self.any_) or (self.all_ is not None and not self.all_):
            raise ValueError("any/all 不能为空")
        return self


class Band(_Model):
    label: str | None = None
    min: Decimal | None = None
    max: Decimal | None = None
    points: Decimal

    @field_validator("min", "max", "points", mode="before")
    @classmethod
    def _parse(cls, v: object) -> object:
        return parse_amount(v)

    @model_validator(mode="after")
    def _order(self) -> Band:
        if self.min is not None and self.max is not None and self.min >= self.max:
            raise ValueError(f"档位下限 {self.min} 必须小于上限 {self.max}")
        return self


class Scale(_Model):
    metric: str
    bands: list[Band] = Field(min_length=1)

    @field_validator("metric")
    @classmethod
    def _known(cls, v: str) -> str:
        if get_metric(v) is None:
            raise ValueError(f"未知指标 metric '{v}'")
        return v


class Option(_Model):
    label: str | None = None
    name: str | None = None
    when: Condition | None = Field(None, description="缺省: 其他情况 (always)")
    points: Decimal

    @field_validator("points", mode="before")
    @classmethod
    def _parse(cls, v: object) -> object:
        return parse_amount(v)


class Item(_Model):
    """A scored indicator: points from bands of one or more metrics (max over scales), from options
    (max or sum of the options met, capped at max_points), or from the province's 特色化 configuration."""

    code: str
    name: str
    category: str
    max_points: Decimal
    source: str | None = None
    unconfirmed: bool = False
    note: str | None = None
    scales: list[Scale] | None = None
    options: list[Option] | None = None
    aggregate: Literal["max", "sum"] = "max"
    local_features: bool = False

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict) and "metric" in data:
            data = dict(data)
            data["scales"] = [{"metric": data.pop("metric"), "bands": data.pop("bands", None)}]
        return data

    @model_validator(mode="after")
    def _check(self) -> Item:
        kinds = [k for k, v in (("scales", self.scales), ("options", self.options)) if v] + (
            ["local_features"] if self.local_features else []
        )
        if len(kinds) != 1:
            raise ValueError(f"评分项必须且只能有一种计分方式 (metric+bands / options / local_features), 实际: {kinds}")
        for s in self.scales or []:
            for b in s.bands:
                if b.points > self.max_points:
                    raise ValueError(f"档位分值 {b.points} 超过该项满分 {self.max_points}")
        return self


class Category(_Model):
    code: str
    name: str
    max_points: Decimal
    min_points: Decimal | None = None


class Prerequisite(_Model):
    """A title that must be valid at the decision date (decision 6), optionally only when ``when`` holds."""

    code: str
    name: str
    tier: Tier
    levels: list[Level] | None = None
    when: Condition | None = None
    source: str | None = None
    unconfirmed: bool = False


class LocalFeatureSet(_Model):
    """地方特色化指标: 1–3 indicators (15 points in 附件2) set by a province for given years."""

    province: str = Field(pattern=r"^\d{2}0000$")
    from_year: int
    to_year: int | None = None
    document: str | None = None
    max_points: Decimal = Decimal(15)
    unconfirmed: bool = False
    source: str | None = None
    items: list[Item] = Field(min_length=1, max_length=3)

    @model_validator(mode="after")
    def _check(self) -> LocalFeatureSet:
        if any(i.local_features for i in self.items):
            raise ValueError("特色化指标不能再嵌套 local_features")
        total = sum((i.max_points for i in self.items), Decimal(0))
        if total > self.max_points:
            raise ValueError(f"特色化指标满分合计 {total} 超过 {self.max_points}")
        return self

    def covers(self, year: int) -> bool:
        return self.from_year <= year and (self.to_year is None or year <= self.to_year)


class RuleSet(_Model):
    """One published standard for one tier. Immutable once loaded (derive variants with ``model_copy``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    family: str
    version: int = Field(ge=1)
    document_number: str
    title: str
    tier: Tier
    level: Level
    jurisdiction: str = Field(description='"national" or a GB/T 2260 code')
    effective_from: date
    effective_to: date | None = None
    band_edge: BandEdge = "favourable"
    prerequisites: list[Prerequisite] = Field(default_factory=list)
    hard_conditions: list[Condition] = Field(default_factory=list)
    direct_routes: list[Condition] = Field(default_factory=list)
    categories: list[Category] = Field(default_factory=list)
    items: list[Item] = Field(default_factory=list)
    pass_score: Decimal | None = None
    local_features: list[LocalFeatureSet] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)

    _compiled: Any = PrivateAttr(default=None)

    @field_validator("jurisdiction")
    @classmethod
    def _jurisdiction(cls, v: str) -> str:
        if v != "national" and not re.fullmatch(r"\d{6}", v):
            raise ValueError('jurisdiction 必须是 "national" 或6位行政区划代码')
        return v

    @model_validator(mode="after")
    def _check(self) -> RuleSet:
        if self.effective_to is not None and self.effective_to < self.effective_from:
            raise ValueError("effective_to 早于 effective_from")
        cats = {c.code for c in self.categories}
        for i, item in enumerate(self.items):
            if item.category not in cats:
                raise ValueError(f"items.{i} ({item.code}) 的类别 '{item.category}' 未在 categories 中定义")
        codes = [i.code for i in self.items] + [c.code for c in self.hard_conditions if c.code]
        codes += [r.code for r in self.direct_routes if r.code] + [p.code for p in self.prerequisites]
        dup = {c for c in codes if codes.count(c) > 1}
        if dup:
            raise ValueError(f"编码重复: {sorted(dup)}")
        for i, c in enumerate(self.hard_conditions):
            if not c.code or not c.name:
                raise ValueError(f"hard_conditions.{i} 需要 code 和 name")
        for i, r in enumerate(self.direct_routes):
            if not r.code or not r.name:
                raise ValueError(f"direct_routes.{i} 需要 code 和 name")
        if self.items and self.pass_score is None:
            raise ValueError("有评分项时必须设置 pass_score")
        if self.pass_score is not None and not self.items:
            raise ValueError("pass_score 需要评分项 items")
        if self.direct_routes and not self.items:
            raise ValueError("直通条件 direct_routes 只替代评分条件, 需要评分项 items")
        for cat in self.categories:
            total = sum((i.max_points for i in self.items if i.category == cat.code), Decimal(0))
            if total > cat.max_points:
                raise ValueError(f"类别 {cat.code} 各项满分合计 {total} 超过类别满分 {cat.max_points}")
        return self

    def covers_region(self, region_code: str | None) -> bool:
        """national covers every region; 330000 covers 33xxxx; 330100 covers 3301xx; 330110 only itself."""
        if self.jurisdiction == "national":
            return True
        if region_code is None:
            return False
        j = self.jurisdiction
        if j.endswith("0000"):
            return region_code[:2] == j[:2]
        if j.endswith("00"):
            return region_code[:4] == j[:4]
        return region_code == j

    def in_force_on(self, when: date) -> bool:
        return self.effective_from <= when and (self.effective_to is None or when <= self.effective_to)
