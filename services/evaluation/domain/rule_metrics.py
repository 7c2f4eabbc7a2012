"""The metric vocabulary of the rule language.

A metric is a named value computed from an enterprise's facts: either a raw indicator (``rd_expense``,
``niche_years`` …) or a value derived from raw amounts (``rd_ratio = rd_expense / operating_revenue``,
decision 3). All arithmetic is ``Decimal``; a missing input yields ``None`` (→ "缺少数据").

Every metric carries a Chinese label, a unit (for display and gaps) and, for ratios of money, the
numerator/denominator fields so that a gap can be stated in yuan at the current revenue.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import Enum
from operator import attrgetter
from typing import Literal

from services.evaluation.domain.facts import EnterpriseFacts
from shared.indicators import IndicatorSet

Value = Decimal | int | bool | str | None
Unit = Literal["ratio", "yuan", "count", "years", "rank", "level", "bool", "text", "percent", "area", "energy"]

ZERO = Decimal(0)
ONE = Decimal(1)
HUNDRED = Decimal(100)
WAN = Decimal(10_000)
YI = Decimal(100_000_000)
CENT = Decimal("0.01")


class Ctx:
    """Evaluation context: the facts, the decision date and a per-call cache of computed metrics."""

    __slots__ = ("as_of", "cache", "facts", "ind", "ref_year")

    def __init__(self, facts: EnterpriseFacts, as_of: date) -> None:
        self.facts = facts
        self.ind: IndicatorSet = facts.indicators
        self.as_of = as_of
        self.ref_year = facts.reporting_year if facts.reporting_year is not None else as_of.year - 1
        self.cache: dict[str, Value] = {}


@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    unit: Unit
    fn: Callable[[Ctx], Value]
    inputs: tuple[str, ...] = ()
    # For money ratios: yuan gap = required × Σ denominator − Σ numerator (per year pair).
    money_pairs: tuple[tuple[str, str], ...] = field(default=())

    def value(self, ctx: Ctx) -> Value:
        cache = ctx.cache
        if self.name in cache:
            return cache[self.name]
        v = self.fn(ctx)
        cache[self.name] = v
        return v


def as_number(v: object) -> Decimal | None:
    """A value as a number (``None``: missing, a yes/no or a text)."""
    if v is None:
        return None
    if isinstance(v, Decimal):
        return v
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return Decimal(v)
    return None


def ratio(num: Decimal | int | None, den: Decimal | int | None) -> Decimal | None:
    """num / den, ``None`` when either is missing or the denominator is zero."""
    n = num if type(num) is Decimal else as_number(num)  # (amounts are Decimals: no call for them)
    d = den if type(den) is Decimal else as_number(den)
    if n is None or d is None or d == 0:
        return None
    return n / d


def growth(cur: Decimal | None, prev: Decimal | None) -> Decimal | None:
    """(cur − prev) / |prev|; ``None`` when prev is missing or zero."""
    if cur is None or prev is None or prev == 0:
        return None
    return (cur - prev) / abs(prev)


def avg_growth(cur: Decimal | None, prev1: Decimal | None, prev2: Decimal | None) -> Decimal | None:
    """The mean of the last two yearly growth rates; ``None`` when either is."""
    g1, g2 = growth(cur, prev1), growth(prev1, prev2)
    return None if g1 is None or g2 is None else (g1 + g2) / 2


def _field(name: str) -> Callable[[Ctx], Value]:
    def get(ctx: Ctx) -> Value:
        v = getattr(ctx.ind, name)
        if isinstance(v, Enum):
            return str(v.value)
        if isinstance(v, bool | int | str | Decimal) or v is None:
            return v
        return None

    return get


def _unit_of(name: str, annotation: object) -> Unit:
    text = str(annotation)
    if name.endswith("_pct"):
        return "percent"
    if name in ("niche_years",):
        return "years"
    if name.startswith("market_rank"):
        return "rank"
    if name in ("digital_level", "strategic_emerging_category"):
        return "level"
    if name == "land_area_mu":
        return "area"
    if name == "energy_tce":
        return "energy"
    if "bool" in text:
        return "bool"
    if "Decimal" in text:
        return "yuan"
    if "int" in text:
        return "count"
    return "text"


REGISTRY: dict[str, Metric] = {}


def _register(m: Metric) -> None:
    REGISTRY[m.name] = m


# Raw indicators, one metric each (label = the field's Chinese description).
for _name, _info in IndicatorSet.model_fields.items():
    if _name in ("sci_awards", "honours", "local_indicators"):
        continue
    _label = (_info.description or _name).split(" ")[0]
    _register(Metric(_name, _label, _unit_of(_name, _info.annotation), _field(_name), (_name,)))


def _derived(
    name: str,
    label: str,
    unit: Unit,
    inputs: tuple[str, ...],
    money_pairs: tuple[tuple[str, str], ...] = (),
) -> Callable[[Callable[[Ctx], Value]], Callable[[Ctx], Value]]:
    def deco(fn: Callable[[Ctx], Value]) -> Callable[[Ctx], Value]:
        _register(Metric(name, label, unit, fn, inputs, money_pairs))
        return fn

    return deco


def _money_ratio(name: str, label: str, num: str, den: str) -> None:
    """A ratio of two amounts (decision 3), whose gap is also stated in yuan at the current denominator."""

    def fn(c: Ctx) -> Value:
        return ratio(getattr(c.ind, num), getattr(c.ind, den))

    _register(Metric(name, label, "ratio", fn, (num, den), ((num, den),)))


_money_ratio("rd_ratio", "研发费用占营业收入比重", "rd_expense", "operating_revenue")
_money_ratio("rd_ratio_prev1", "研发费用占营业收入比重(Y-1)", "rd_expense_prev1", "operating_revenue_prev1")
_money_ratio("main_business_share", "主营业务收入占营业收入比重", "main_business_revenue", "operating_revenue")
_money_ratio("net_margin", "上年度净利润率", "net_profit", "operating_revenue")
_money_ratio("debt_ratio", "资产负债率", "total_liabilities", "total_assets")


@_derived("rd_ratio_min_2y", "近2年研发费用占营业收入比重(两年中较低者)", "ratio",
          ("rd_expense", "operating_revenue", "rd_expense_prev1", "operating_revenue_prev1"),
          (("rd_expense", "operating_revenue"), ("rd_expense_prev1", "operating_revenue_prev1")))
def _rd_ratio_min_2y(c: Ctx) -> Value:
    a = ratio(c.ind.rd_expense, c.ind.operating_revenue)
    b = ratio(c.ind.rd_expense_prev1, c.ind.operating_revenue_prev1)
    return None if a is None or b is None else min(a, b)


@_derived("rd_expense_min_2y", "近2年研发费用(两年中较低者)", "yuan", ("rd_expense", "rd_expense_prev1"))
def _rd_min(c: Ctx) -> Value:
    a, b = c.ind.rd_expense, c.ind.rd_expense_prev1
    return None if a is None or b is None else min(a, b)


@_derived("rd_expense_sum_2y", "近2年研发费用合计", "yuan", ("rd_expense", "rd_expense_prev1"))
def _rd_sum(c: Ctx) -> Value:
    a, b = c.ind.rd_expense, c.ind.rd_expense_prev1
    return None if a is None or b is None else a + b


@_derived("rd_expense_avg_2y", "近2年研发费用总额均值", "yuan", ("rd_expense", "rd_expense_prev1"))
def _rd_avg(c: Ctx) -> Value:
    a, b = c.ind.rd_expense, c.ind.rd_expense_prev1
    return None if a is None or b is None else (a + b) / 2


@_derived("main_business_growth", "上年度主营业务收入增长率", "ratio",
          ("main_business_revenue", "main_business_revenue_prev1"))
def _mb_growth(c: Ctx) -> Value:
    return growth(c.ind.main_business_revenue, c.ind.main_business_revenue_prev1)


@_derived("main_business_avg_growth_2y", "近2年主营业务收入平均增长率", "ratio",
          ("main_business_revenue", "main_business_revenue_prev1", "main_business_revenue_prev2"))
def _mb_avg_growth(c: Ctx) -> Value:
    # Arithmetic mean of the two yearly growth rates (UNCONFIRMED: the annex's formula was not retrieved).
    return avg_growth(c.ind.main_business_revenue, c.ind.main_business_revenue_prev1, c.ind.main_business_revenue_prev2)


@_derived("main_business_avg_3y", "近三年平均主营业务收入", "yuan",
          ("main_business_revenue", "main_business_revenue_prev1", "main_business_revenue_prev2"))
def _mb_avg3(c: Ctx) -> Value:
    a, b, d = c.ind.main_business_revenue, c.ind.main_business_revenue_prev1, c.ind.main_business_revenue_prev2
    return None if a is None or b is None or d is None else (a + b + d) / 3


@_derived("revenue_growth", "上年度营业收入增长率", "ratio", ("operating_revenue", "operating_revenue_prev1"))
def _rev_growth(c: Ctx) -> Value:
    return growth(c.ind.operating_revenue, c.ind.operating_revenue_prev1)


@_derived("revenue_cagr_2y", "近两年营业收入复合增长率", "ratio", ("operating_revenue", "operating_revenue_prev2"))
def _rev_cagr(c: Ctx) -> Value:
    cur, base = c.ind.operating_revenue, c.ind.operating_revenue_prev2
    if cur is None or base is None or base == 0:
        return None
    return (cur / base).sqrt() - ONE


@_derived("revenue_growing_2y", "近2年营业收入持续增长", "bool",
          ("operating_revenue", "operating_revenue_prev1", "operating_revenue_prev2"))
def _rev_growing(c: Ctx) -> Value:
    a, b, d = c.ind.operating_revenue, c.ind.operating_revenue_prev1, c.ind.operating_revenue_prev2
    return None if a is None or b is None or d is None else (a > b > d)


@_derived("net_profit_avg_growth_2y", "近2年净利润平均增长率", "ratio",
          ("net_profit", "net_profit_prev1", "net_profit_prev2"))
def _np_avg_growth(c: Ctx) -> Value:
    return avg_growth(c.ind.net_profit, c.ind.net_profit_prev1, c.ind.net_profit_prev2)


@_derived("rd_staff_ratio", "研发人员占职工总数比重", "ratio", ("rd_staff", "employees"))
def _rd_staff_ratio(c: Ctx) -> Value:
    return ratio(c.ind.rd_staff, c.ind.employees)


_INSTITUTION_RANK = {"none": 0, "below_city": 1, "city": 2, "province": 3, "national": 4}


@_derived("rd_institution_rank", "研发机构级别(0未建立,1市级以下,2市级,3省级,4国家级)", "level",
          ("rd_institution_level",))
def _inst_rank(c: Ctx) -> Value:
    lvl = c.ind.rd_institution_level
    return None if lvl is None else _INSTITUTION_RANK[str(lvl.value)]


@_derived("years_since_founded", "连续经营年限(成立至决定日)", "years", ("founded_on",))
def _years_founded(c: Ctx) -> Value:
    f = c.facts.founded_on
    if f is None:
        return None
    years = c.as_of.year - f.year - (1 if (c.as_of.month, c.as_of.day) < (f.month, f.day) else 0)
    return Decimal(years)


# Facts of the enterprise that are not annual indicators, as metrics.
_FACTS: tuple[tuple[str, str, Unit], ...] = (
    ("region_code", "注册地行政区划代码", "text"),
    ("industry_code", "国民经济行业分类代码", "text"),
    ("is_manufacturing", "属于制造业", "bool"),
    ("is_recheck", "复核企业", "bool"),
)
for _name, _label, _unit in _FACTS:
    _register(Metric(_name, _label, _unit, attrgetter(f"facts.{_name}"), (_name,)))


def local_metric(code: str, label: str | None = None, unit: Unit = "text") -> Metric:
    """A 地方特色化 indicator read from ``IndicatorSet.local_indicators[code]``."""

    def get(c: Ctx) -> Value:
        v = c.ind.local_indicators.get(code)
        return v

    return Metric(f"local.{code}", label or code, unit, get, (f"local_indicators.{code}",))


def get_metric(name: str) -> Metric | None:
    if name.startswith("local."):
        return local_metric(name[len("local."):])
    return REGISTRY.get(name)


def input_values(ctx: Ctx, metric: Metric) -> dict[str, Value]:
    """The raw inputs a metric read, for the explanation."""
    out: dict[str, Value] = {}
    for name in metric.inputs:
        if name.startswith("local_indicators."):
            out[name] = ctx.ind.local_indicators.get(name.split(".", 1)[1])
        elif name in ("founded_on", "region_code", "industry_code", "is_manufacturing", "is_recheck"):
            v = getattr(ctx.facts, name)
            out[name] = v.isoformat() if isinstance(v, date) else v
        else:
            v = getattr(ctx.ind, name)
            out[name] = str(v.value) if isinstance(v, Enum) else v
    return out


# ---------------------------------------------------------------------------------------------- display


def fmt_yuan(v: Decimal) -> str:
    a = abs(v)
    sign = "-" if v < 0 else ""
    if a >= YI and (a % (YI / 100)) == 0:
        return f"{sign}{_trim(a / YI)}亿元"
    if a >= WAN and (a % WAN) == 0:
        return f"{sign}{_trim(a / WAN)}万元"
    return f"{sign}¥{a.quantize(CENT):,}"


def _trim(d: Decimal) -> str:
    """``d`` without trailing zeros, in positional notation. ``str`` is that already unless it chose the
    exponent form (and is much cheaper than ``format``, which ``fmt_value`` would otherwise spend most of its
    time in)."""
    n = d.normalize()
    s = str(n)
    return format(n, "f") if "E" in s else s


def fmt_value(v: Value, unit: Unit) -> str:
    if v is None:
        return "缺少数据"
    if isinstance(v, bool):
        return "是" if v else "否"
    if isinstance(v, str):
        return v
    d = v if type(v) is Decimal else Decimal(v)
    if unit == "ratio":
        return f"{_trim((d * HUNDRED).quantize(CENT))}%"
    if unit == "yuan":
        return fmt_yuan(d)
    affix = _AFFIXES.get(unit)
    return _trim(d) if affix is None else f"{affix[0]}{_trim(d)}{affix[1]}"


# what a number shows around it, by unit (ratio and yuan apart; counts, levels: the number alone)
_AFFIXES: dict[str, tuple[str, str]] = {
    "percent": ("", "%"), "years": ("", "年"), "rank": ("第", "位"), "area": ("", "亩"), "energy": ("", "吨标准煤"),
}


def fmt_edge(v: Decimal, unit: Unit) -> str:
    """A band edge, compact: 5%, 500万, 2年."""
    if unit == "ratio":
        return f"{_trim(v * HUNDRED)}%"
    if unit == "yuan":
        if v != 0 and v % WAN == 0:
            if v % YI == 0:
                return f"{_trim(v / YI)}亿"
            return f"{_trim(v / WAN)}万"
        return f"¥{_trim(v)}"
    if unit == "years":
        return f"{_trim(v)}年"
    if unit == "percent":
        return f"{_trim(v)}%"
    return _trim(v)
