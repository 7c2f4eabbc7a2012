"""The rules engine: evaluate one enterprise's facts under one rule set at a decision date. Pure, no I/O.

A rule set is compiled once (conditions → small node objects, bands → intervals with their edge rule
resolved) and the compiled form is cached on the rule set, so ``evaluate`` only reads metrics and compares.

Eligibility = every applicable prerequisite title valid at ``as_of``
            ∧ every hard condition met
            ∧ (score ≥ pass_score with every category minimum  ∨  any direct route)   [if the set is scored]
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_CEILING, Decimal
from itertools import pairwise
from typing import Any, Literal

from pydantic import BaseModel, Field

from services.evaluation.domain.facts import EnterpriseFacts
from services.evaluation.domain.rule_metrics import (
    HUNDRED,
    ZERO,
    Ctx,
    Metric,
    Unit,
    Value,
    fmt_edge,
    fmt_value,
    fmt_yuan,
    get_metric,
    input_values,
)
from services.evaluation.domain.rules import (
    LEVEL_NAMES,
    TIER_NAMES,
    Band,
    Condition,
    Item,
    LocalFeatureSet,
    Prerequisite,
    RuleSet,
)

MISSING = "缺少数据"

# ----------------------------------------------------------------------------------------------- results


class ItemResult(BaseModel):
    code: str
    name: str
    category: str | None = None
    category_name: str | None = None
    kind: Literal["condition", "scored", "route", "local_feature"]
    inputs: dict[str, Value] = Field(default_factory=dict)
    value: Value = None
    value_display: str = ""
    band: str | None = None
    points: Decimal | None = None
    max_points: Decimal | None = None
    met: bool
    threshold: str | None = None
    reason: str | None = None
    source: str | None = None
    unconfirmed: bool = False


class PrereqResult(BaseModel):
    code: str
    name: str
    tier: str
    levels: list[str] | None = None
    applicable: bool
    met: bool
    title_valid_to: date | None = None
    reason: str | None = None


class Gap(BaseModel):
    code: str
    description: str
    metric: str | None = None
    unit: str | None = None
    current: str | None = None
    required: str
    shortfall: Decimal | None = None
    shortfall_display: str | None = None
    yuan_needed: Decimal | None = None


class EvaluationResult(BaseModel):
    ruleset_id: str
    ruleset_version: int
    document_number: str = ""
    tier: str
    level: str
    as_of: date
    eligible: bool
    score: Decimal | None = None
    pass_score: Decimal | None = None
    category_scores: dict[str, Decimal] = Field(default_factory=dict)
    items: list[ItemResult] = Field(default_factory=list)
    route: str | None = None
    prerequisites: list[PrereqResult] = Field(default_factory=list)
    unmet: list[str] = Field(default_factory=list)
    gaps: list[Gap] = Field(default_factory=list)

    @property
    def unmet_codes(self) -> list[str]:
        return [u.split(":", 1)[0] for u in self.unmet]


# ------------------------------------------------------------------------------------- compiled conditions

GapSpec = dict[str, Any]  # the keyword arguments of one Gap (nodes describe gaps as specs; see fast.py)

_OPSYM = {">=": "≥", ">": ">", "<=": "≤", "<": "<", "==": "=", "!=": "≠"}
_Q2 = Decimal("0.01")


def _num(v: Value) -> Decimal | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, Decimal):
        return v
    if isinstance(v, int):
        return Decimal(v)
    return None


class Node:
    text: str

    def eval(self, ctx: Ctx) -> bool | None:  # None: 缺少数据
        raise NotImplementedError

    def leaves(self) -> list[Leaf]:
        return []

    def gaps(self, ctx: Ctx, code: str, out: list[GapSpec]) -> None:
        return None


class Leaf(Node):
    __slots__ = ("metric", "op", "req_text", "required", "selector", "text")

    def __init__(
        self, metric: Metric, op: str, required: Decimal | bool | str | list[str] | None, selector: bool = False
    ) -> None:
        self.selector = selector
        self.metric = metric
        self.op = op
        self.required = required
        self.req_text = ""
        if op in _OPSYM and not isinstance(required, list | bool):
            self.req_text = f"{_OPSYM[op]} {fmt_value(required, metric.unit)}"
        if op == "present":
            self.text = f"{metric.label}: 已填报"
        elif op in ("in", "not_in"):
            assert isinstance(required, list)
            word = "属于" if op == "in" else "不属于"
            self.text = f"{metric.label} {word} {'/'.join(required)}"
        elif op == "startswith":
            self.text = f"{metric.label} 以 {required} 开头"
        elif op == "==" and isinstance(required, bool):
            self.text = f"{metric.label}: {'是' if required else '否'}"
        else:
            req = fmt_value(required if not isinstance(required, list) else None, metric.unit)
            self.text = f"{metric.label} {_OPSYM[op]} {req}"

    def leaves(self) -> list[Leaf]:
        return [self]

    def eval(self, ctx: Ctx) -> bool | None:
        v = self.metric.value(ctx)
        op = self.op
        if op == "present":
            return v is not None and v != ""
        if v is None:
            return None
        r = self.required
        if op in (">=", ">", "<=", "<"):
            x = _num(v)
            if x is None or not isinstance(r, Decimal):
                return None
            if op == ">=":
                return x >= r
            if op == ">":
                return x > r
            if op == "<=":
                return x <= r
            return x < r
        if op in ("==", "!="):
            if isinstance(r, Decimal):
                x = _num(v)
                eq = x is not None and x == r
            else:
                eq = v == r
            return eq if op == "==" else not eq
        if op in ("in", "not_in"):
            assert isinstance(r, list)
            inside = str(v) in r
            return inside if op == "in" else not inside
        if op == "startswith":
            return str(v).startswith(str(r))
        return None  # pragma: no cover

    def gaps(self, ctx: Ctx, code: str, out: list[GapSpec]) -> None:
        m = self.metric
        v = m.value(ctx)
        r = self.required
        required_text = self.req_text or self.text
        if v is None:
            out.append(dict(code=code, description=f"{self.text}: {MISSING}", metric=m.name, unit=m.unit,
                            current=None, required=required_text))
            return
        x = _num(v)
        if self.op in (">=", ">", "<=", "<") and x is not None and isinstance(r, Decimal):
            up = self.op in (">=", ">")
            short = (r - x) if up else (x - r)
            yuan = _yuan_needed(ctx, m, r, up)
            short_disp = _fmt_short(short, m.unit)
            desc = f"{m.label} {fmt_value(x, m.unit)} → {fmt_value(r, m.unit)}: {'差' if up else '超出'}{short_disp}"
            if yuan is not None and m.unit != "yuan":
                verb = "需增加" if up else "需减少"
                desc += f", 按当前数据{verb}{_money_word(m)} {fmt_yuan(yuan)}"
            out.append(dict(code=code, description=desc, metric=m.name, unit=m.unit,
                            current=fmt_value(x, m.unit), required=required_text, shortfall=short,
                            shortfall_display=short_disp, yuan_needed=yuan))
            return
        out.append(dict(code=code, description=f"{self.text} (当前: {fmt_value(v, m.unit)})", metric=m.name,
                        unit=m.unit, current=fmt_value(v, m.unit), required=required_text))


def _money_word(m: Metric) -> str:
    return {
        "rd_ratio": "研发费用", "rd_ratio_prev1": "研发费用", "rd_ratio_min_2y": "研发费用",
        "main_business_share": "主营业务收入", "net_margin": "净利润", "debt_ratio": "负债",
    }.get(m.name, "金额")


def _yuan_needed(ctx: Ctx, m: Metric, required: Decimal, up: bool) -> Decimal | None:
    if m.unit == "yuan":
        v = _num(m.value(ctx))
        if v is None:
            return None
        return ((required - v) if up else (v - required)).quantize(_Q2, rounding=ROUND_CEILING)
    if not m.money_pairs:
        return None
    total = ZERO
    for num_name, den_name in m.money_pairs:
        num, den = getattr(ctx.ind, num_name), getattr(ctx.ind, den_name)
        if num is None or den is None:
            return None
        need = required * den - num if up else num - required * den
        if need > 0:
            total += need
    return total.quantize(_Q2, rounding=ROUND_CEILING)  # round up: the amount must close the gap


def _fmt_short(d: Decimal, unit: Unit) -> str:
    if unit == "ratio":
        return f"{(d * HUNDRED).quantize(_Q2).normalize():f}个百分点"
    if unit == "yuan":
        return fmt_yuan(d)
    if unit == "percent":
        return f"{d.normalize():f}个百分点"
    if unit == "years":
        return f"{d.normalize():f}年"
    if unit == "rank":
        return f"{d.normalize():f}位"
    return f"{d.normalize():f}"


class AllNode(Node):
    def __init__(self, kids: list[Node]) -> None:
        self.kids = kids
        self.text = " 且 ".join(k.text for k in kids)
        if len(kids) > 1:
            self.text = f"[{self.text}]"

    def applicable(self, ctx: Ctx) -> bool:
        return all(k.eval(ctx) is not False for k in self.kids if isinstance(k, Leaf) and k.selector)

    def leaves(self) -> list[Leaf]:
        return [leaf for k in self.kids for leaf in k.leaves()]

    def eval(self, ctx: Ctx) -> bool | None:
        missing = False
        for k in self.kids:
            r = k.eval(ctx)
            if r is False:
                return False
            if r is None:
                missing = True
        return None if missing else True

    def gaps(self, ctx: Ctx, code: str, out: list[GapSpec]) -> None:
        for k in self.kids:
            if k.eval(ctx) is not True:
                k.gaps(ctx, code, out)


class AnyNode(Node):
    def __init__(self, kids: list[Node]) -> None:
        self.kids = kids
        self.text = "(" + " 或 ".join(k.text for k in kids) + ")"

    def leaves(self) -> list[Leaf]:
        return [leaf for k in self.kids for leaf in k.leaves()]

    def eval(self, ctx: Ctx) -> bool | None:
        missing = False
        for k in self.kids:
            r = k.eval(ctx)
            if r is True:
                return True
            if r is None:
                missing = True
        return None if missing else False

    def gaps(self, ctx: Ctx, code: str, out: list[GapSpec]) -> None:
        # Report the alternative closest to being met (fewest unmet parts; first on a tie).
        best: list[GapSpec] | None = None
        kids = [k for k in self.kids if not isinstance(k, AllNode) or k.applicable(ctx)] or self.kids
        for k in kids:
            mine: list[GapSpec] = []
            k.gaps(ctx, code, mine)
            if best is None or (mine and len(mine) < len(best)):
                best = mine
        out.extend(best or [])


class FactNode(Node):
    """Honour / award / 创客中国 / title conditions: never "missing" (an empty list means none held).

    ``reads(ctx)`` is everything ``fn`` and ``describe`` read but the decision date, as a hashable value (of
    validated facts): two enterprises with equal ones have the same outcome (the fast path's memo key)."""

    def __init__(self, text: str, fn: object, describe: object, reads: Callable[[Ctx], Hashable]) -> None:
        self.text = text
        self._fn = fn
        self._describe = describe
        self.reads = reads

    def eval(self, ctx: Ctx) -> bool | None:
        fn = self._fn
        assert callable(fn)
        return bool(fn(ctx))

    def current(self, ctx: Ctx) -> str:
        d = self._describe
        assert callable(d)
        return str(d(ctx))

    def gaps(self, ctx: Ctx, code: str, out: list[GapSpec]) -> None:
        out.append(dict(code=code, description=f"需满足: {self.text} (当前: {self.current(ctx)})",
                        current=self.current(ctx), required=self.text))


_AWARD_LEVEL = {"national": "国家级", "provincial": "省级"}
_HONOUR_NAMES = {
    "high_tech_enterprise": "高新技术企业", "tech_innovation_demo": "国家级技术创新示范企业",
    "ip_advantage": "知识产权优势企业", "ip_demo": "知识产权示范企业", "tech_sme": "科技型中小企业",
}


def compile_condition(c: Condition) -> Node:
    if c.metric is not None:
        m = get_metric(c.metric)
        assert m is not None and c.op is not None
        return Leaf(m, c.op, c.value, c.selector)
    if c.all_ is not None:
        return AllNode([compile_condition(k) for k in c.all_])
    if c.any_ is not None:
        return AnyNode([compile_condition(k) for k in c.any_])
    if c.honour is not None:
        codes = frozenset(str(h.value) for h in c.honour)
        names = "、".join(_HONOUR_NAMES.get(h, h) for h in sorted(codes))

        def has_honour(ctx: Ctx) -> bool:
            return any(
                str(h.code.value) in codes and (h.valid_until is None or h.valid_until >= ctx.as_of)
                for h in ctx.ind.honours
            )

        def held_honours(ctx: Ctx) -> str:
            held = [f"{_HONOUR_NAMES.get(str(h.code.value), str(h.code.value))}(至{h.valid_until or '长期'})"
                    for h in ctx.ind.honours]
            return "、".join(held) or "无"

        def honours_read(ctx: Ctx) -> Hashable:
            return tuple([(h.code, h.valid_until) for h in ctx.ind.honours])

        return FactNode(f"持有有效期内的{names}之一", has_honour, held_honours, honours_read)
    if c.award is not None:
        spec = c.award
        levels = frozenset(str(x.value) for x in spec.levels)
        lv = "/".join(_AWARD_LEVEL[x] for x in sorted(levels))
        rank_txt = f"(排名前{spec.max_rank})" if spec.max_rank else ""

        def has_award(ctx: Ctx) -> bool:
            lo = ctx.ref_year - spec.within_years + 1
            return any(
                str(a.level.value) in levels
                and (spec.max_rank is None or a.rank <= spec.max_rank)
                and lo <= a.year <= ctx.as_of.year
                for a in ctx.ind.sci_awards
            )

        def awards(ctx: Ctx) -> str:
            held = [f"{a.year}年{_AWARD_LEVEL[str(a.level.value)]}第{a.rank}名" for a in ctx.ind.sci_awards]
            return "、".join(held) or "无"

        def awards_read(ctx: Ctx) -> Hashable:
            return ctx.ref_year, tuple([(a.level, a.rank, a.year) for a in ctx.ind.sci_awards])

        return FactNode(f"近{spec.within_years}年获得{lv}科技奖励{rank_txt}", has_award, awards, awards_read)
    if c.maker_china is not None:
        mk = c.maker_china

        def in_maker(ctx: Ctx) -> bool:
            top, year = ctx.ind.maker_china_national_top, ctx.ind.maker_china_year
            return (top is not None and top <= mk.max_top and year is not None
                    and ctx.ref_year - mk.within_years + 1 <= year <= ctx.as_of.year)

        def maker(ctx: Ctx) -> str:
            top, year = ctx.ind.maker_china_national_top, ctx.ind.maker_china_year
            return f"{year}年全国{top}强" if top else "无"

        def maker_read(ctx: Ctx) -> Hashable:
            return ctx.ref_year, ctx.ind.maker_china_national_top, ctx.ind.maker_china_year

        return FactNode(f"近{mk.within_years}年进入\"创客中国\"全国{mk.max_top}强企业组", in_maker, maker, maker_read)
    if c.title is not None:
        ts = c.title
        tl = frozenset(ts.levels) if ts.levels else None
        txt = f"持有有效的{'/'.join(LEVEL_NAMES[x] for x in ts.levels) if ts.levels else ''}{TIER_NAMES[ts.tier]}称号"

        def has_title(ctx: Ctx) -> bool:
            return any(t.tier == ts.tier and (tl is None or t.level in tl) and t.valid_at(ctx.as_of)
                       for t in ctx.facts.titles)

        def titles(ctx: Ctx) -> str:
            return "、".join(f"{t.tier}/{t.level} {t.valid_from}~{t.valid_to}{' 已撤销' if t.revoked else ''}"
                            for t in ctx.facts.titles if t.tier == ts.tier) or "无"

        def titles_read(ctx: Ctx) -> Hashable:
            return tuple([(t.tier, t.level, t.valid_from, t.valid_to, t.revoked) for t in ctx.facts.titles])

        return FactNode(txt, has_title, titles, titles_read)
    raise ValueError("empty condition")  # pragma: no cover - the model validator forbids it


# ------------------------------------------------------------------------------------------ compiled items


@dataclass(frozen=True)
class CBand:
    lo: Decimal | None
    hi: Decimal | None
    points: Decimal
    display: str


@dataclass(frozen=True)
class CScale:
    metric: Metric
    bands: tuple[CBand, ...]
    favourable: bool
    # The band edges, sorted, and the band picked in each region they cut the line into — below the first,
    # at the first, between the first and the second, …, above the last (``None``: the edges are too close
    # to tell a value between them apart; then ``pick`` scans the bands).
    edges: tuple[Decimal, ...] = field(init=False, repr=False, compare=False)
    regions: tuple[CBand | None, ...] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        edges = sorted({e for b in self.bands for e in (b.lo, b.hi) if e is not None})
        # a value inside each region: the bands containing it (hence the band picked) are the same for all
        inside = [edges[0] - 1] if edges else [ZERO]
        for lo, hi in pairwise(edges):
            inside += [lo, (lo + hi) / 2]
        if edges:
            inside += [edges[-1], edges[-1] + 1]
        ordered = all(a < b for a, b in pairwise(inside))
        object.__setattr__(self, "edges", tuple(edges))
        object.__setattr__(self, "regions", tuple(self.scan(x) for x in inside) if ordered else None)

    def pick(self, v: Decimal) -> CBand | None:
        """The band of ``v`` (the one giving most points, or fewest when not favourable, among those containing
        it; the first on a tie): a binary search among the edges instead of a scan of the bands."""
        regions = self.regions
        if regions is None:
            return self.scan(v)
        edges = self.edges
        i = bisect_left(edges, v)
        return regions[2 * i + 1] if i < len(edges) and edges[i] == v else regions[2 * i]

    def scan(self, v: Decimal) -> CBand | None:
        """``pick`` by the definition: every band, in order."""
        best: CBand | None = None
        for b in self.bands:
            inside = (b.lo is None or v >= b.lo) and (b.hi is None or v <= b.hi)
            if inside and (best is None or (b.points > best.points if self.favourable else b.points < best.points)):
                best = b
        return best


def _compile_bands(bands: list[Band], unit: Unit, favourable: bool) -> tuple[CBand, ...]:
    """Resolve shared edges (decision 2) and show them: with "favourable" the edge value belongs to the
    band giving more points (5% → "5%以上"); with "strict" to the one giving fewer."""

    def winner_at(e: Decimal) -> Band:
        cands = [b for b in bands if (b.min is None or e >= b.min) and (b.max is None or e <= b.max)]
        key = (lambda b: b.points) if favourable else (lambda b: -b.points)
        return max(cands, key=key)

    out: list[CBand] = []
    for b in bands:
        left = "(-∞" if b.min is None else ("[" if winner_at(b.min) is b else "(") + fmt_edge(b.min, unit)
        right = "+∞)" if b.max is None else fmt_edge(b.max, unit) + ("]" if winner_at(b.max) is b else ")")
        label = f"{b.label} " if b.label else ""
        out.append(CBand(b.min, b.max, b.points, f"{label}{left}, {right}"))
    return tuple(out)


class AlwaysNode(Node):
    text = "其他情况"

    def eval(self, ctx: Ctx) -> bool | None:
        return True


@dataclass(frozen=True)
class COption:
    label: str
    node: Node
    points: Decimal


@dataclass
class CItem:
    item: Item
    scales: tuple[CScale, ...]
    options: tuple[COption, ...]
    inputs_metrics: tuple[Metric, ...]
    threshold: str = ""


@dataclass
class CFeatures:
    cfg: LocalFeatureSet
    items: tuple[CItem, ...]


def _compile_item(item: Item, favourable: bool) -> CItem:
    scales: list[CScale] = []
    metrics: list[Metric] = []
    for s in item.scales or []:
        m = get_metric(s.metric)
        assert m is not None
        scales.append(CScale(m, _compile_bands(s.bands, m.unit, favourable), favourable))
        metrics.append(m)
    options: list[COption] = []
    for o in item.options or []:
        node = compile_condition(o.when) if o.when is not None else AlwaysNode()
        options.append(COption(o.label or o.name or node.text, node, o.points))
        metrics.extend(leaf.metric for leaf in node.leaves())
    parts: list[str] = []
    for sc in scales:
        prefix = f"{sc.metric.label}: " if len(scales) > 1 else ""
        parts.append(prefix + "; ".join(f"{b.display} → {_pts(b.points)}分" for b in sc.bands))
    if options:
        opts = "; ".join(f"{o.label} → {_pts(o.points)}分" for o in options)
        parts.append(opts + (f" (累加, 最高{_pts(item.max_points)}分)" if item.aggregate == "sum" else ""))
    if item.local_features:
        parts.append("由省级主管部门按年度配置 (rulesets/local_features)")
    threshold = " | ".join(parts)
    return CItem(item, tuple(scales), tuple(options), tuple(dict.fromkeys(metrics)), threshold)


def _pts(d: Decimal) -> str:
    return f"{d.normalize():f}"


@dataclass
class CCond:
    cond: Condition
    node: Node


@dataclass
class CPrereq:
    pre: Prerequisite
    when: Node | None
    levels: frozenset[str] | None


@dataclass
class Compiled:
    prereqs: tuple[CPrereq, ...]
    hard: tuple[CCond, ...]
    routes: tuple[CCond, ...]
    items: tuple[CItem, ...]
    features: dict[str, list[CFeatures]]
    category_names: dict[str, str]
    category_max: dict[str, Decimal]
    category_min: dict[str, Decimal]
    fast: Any = None  # the fast path's per-rule-set plan (services.evaluation.domain.fast), built on first use


def compile_ruleset(rs: RuleSet) -> Compiled:
    """Compile (and cache on the rule set). Called by the loader so errors surface at load."""
    cached = rs._compiled
    # Keyed by object identity: model_copy(update=...) copies private attributes, so a copy recompiles.
    if isinstance(cached, tuple) and cached[0] == id(rs) and isinstance(cached[1], Compiled):
        return cached[1]
    fav = rs.band_edge == "favourable"
    features: dict[str, list[CFeatures]] = {}
    for cfg in rs.local_features:
        features.setdefault(cfg.province, []).append(
            CFeatures(cfg, tuple(_compile_item(i, fav) for i in cfg.items))
        )
    c = Compiled(
        prereqs=tuple(
            CPrereq(p, compile_condition(p.when) if p.when else None, frozenset(p.levels) if p.levels else None)
            for p in rs.prerequisites
        ),
        hard=tuple(CCond(h, compile_condition(h)) for h in rs.hard_conditions),
        routes=tuple(CCond(r, compile_condition(r)) for r in rs.direct_routes),
        items=tuple(_compile_item(i, fav) for i in rs.items),
        features=features,
        category_names={k.code: k.name for k in rs.categories},
        category_max={k.code: k.max_points for k in rs.categories},
        category_min={k.code: k.min_points for k in rs.categories if k.min_points is not None},
    )
    rs._compiled = (id(rs), c)
    return c


# -------------------------------------------------------------------------------------------- evaluation


def _inputs(ctx: Ctx, metrics: tuple[Metric, ...] | list[Metric]) -> dict[str, Value]:
    out: dict[str, Value] = {}
    for m in metrics:
        out.update(input_values(ctx, m))
    return out


def _cond_result(ctx: Ctx, cc: CCond, kind: Literal["condition", "route"]) -> tuple[ItemResult, bool | None]:
    node = cc.node
    state = node.eval(ctx)
    leaves = node.leaves()
    metrics = [leaf.metric for leaf in leaves]
    value: Value = None
    if len(leaves) == 1:
        value = leaves[0].metric.value(ctx)
        display = fmt_value(value, leaves[0].metric.unit)
    elif leaves:
        display = "; ".join(f"{leaf.metric.label}: {fmt_value(leaf.metric.value(ctx), leaf.metric.unit)}"
                            for leaf in dict.fromkeys(leaves))
    else:
        display = node.current(ctx) if isinstance(node, FactNode) else ""
    c = cc.cond
    res = ItemResult(
        code=c.code or "",
        name=c.name or node.text,
        category=c.category,
        kind=kind,
        inputs=_inputs(ctx, list(dict.fromkeys(metrics))),
        value=value,
        value_display=display,
        met=state is True,
        threshold=node.text,
        reason=None if state is True else (MISSING if state is None else "未达到要求"),
        source=c.source,
        unconfirmed=c.unconfirmed,
    )
    return res, state


def _score_item(ctx: Ctx, ci: CItem, category: str) -> ItemResult:
    item = ci.item
    points = ZERO
    band: str | None = None
    value: Value = None
    display = ""
    missing = False
    if ci.scales:
        best: tuple[Decimal, str] | None = None
        shown: list[str] = []
        any_value = False
        for sc in ci.scales:
            v = sc.metric.value(ctx)
            shown.append(f"{sc.metric.label}: {fmt_value(v, sc.metric.unit)}" if len(ci.scales) > 1
                         else fmt_value(v, sc.metric.unit))
            x = _num(v)
            if x is None:
                continue
            any_value = True
            if value is None:
                value = v
            b = sc.pick(x)
            p, d = (b.points, b.display) if b else (ZERO, "不属于以上档位")
            if best is None or p > best[0]:
                best = (p, d if len(ci.scales) == 1 else f"{sc.metric.label} {d}")
                value = v
        display = "; ".join(shown)
        if best is not None:
            points, band = best
        missing = not any_value
    else:
        met_opts: list[COption] = []
        all_missing = True
        for o in ci.options:
            r = o.node.eval(ctx)
            if r is True:
                met_opts.append(o)
            if r is not None:
                all_missing = False
        if met_opts:
            if item.aggregate == "sum":
                points = sum((o.points for o in met_opts), ZERO)
            else:
                points = max(o.points for o in met_opts)
            band = "、".join(o.label for o in met_opts)
        else:
            band = "不属于以上"
            missing = all_missing
        display = band
    points = min(points, item.max_points)
    return ItemResult(
        code=item.code,
        name=item.name,
        category=category,
        kind="scored",
        inputs=_inputs(ctx, ci.inputs_metrics),
        value=value,
        value_display=display,
        band=band,
        points=points,
        max_points=item.max_points,
        met=points > 0,
        threshold=ci.threshold,
        reason=MISSING if missing else None,
        source=item.source,
        unconfirmed=item.unconfirmed,
    )


def _local_features(ctx: Ctx, comp: Compiled, item: Item, category: str) -> list[ItemResult]:
    region = ctx.facts.region_code
    province = f"{region[:2]}0000" if region else None
    chosen: CFeatures | None = None
    for f in comp.features.get(province or "", []):
        if f.cfg.covers(ctx.ref_year) and (chosen is None or f.cfg.from_year > chosen.cfg.from_year):
            chosen = f
    if chosen is None:
        return [ItemResult(code=item.code, name=item.name, category=category, kind="scored", points=ZERO,
                           max_points=item.max_points, met=False, value_display="本省未配置特色化指标",
                           reason=MISSING if province is None else "本省该年度未配置特色化指标",
                           source=item.source, unconfirmed=item.unconfirmed)]
    subs = [_score_item(ctx, ci, category) for ci in chosen.items]
    for s in subs:
        s.kind = "local_feature"
        s.code = f"{item.code}.{s.code}"
    total = min(sum((s.points or ZERO for s in subs), ZERO), item.max_points)
    head = ItemResult(
        code=item.code, name=item.name, category=category, kind="scored", points=total,
        max_points=item.max_points, met=total > 0,
        value_display="; ".join(f"{s.name} {s.points}分" for s in subs),
        band=f"{chosen.cfg.province} {chosen.cfg.from_year}年起特色化指标",
        reason=MISSING if all(s.reason == MISSING for s in subs) else None,
        source=chosen.cfg.source or item.source, unconfirmed=item.unconfirmed or chosen.cfg.unconfirmed,
    )
    return [head, *subs]


def prerequisite_outcome(
    cp: CPrereq, ctx: Ctx, facts: EnterpriseFacts, as_of: date
) -> tuple[bool, bool, str | None, date | None]:
    """(applicable, met, Chinese reason, latest valid_to of a title valid at ``as_of``) of one prerequisite."""
    p = cp.pre
    applicable = cp.when is None or cp.when.eval(ctx) is not False
    held = [t for t in facts.titles if t.tier == p.tier and (cp.levels is None or t.level in cp.levels)]
    valid = [t for t in held if t.valid_at(as_of)]
    met = not applicable or bool(valid)
    reason: str | None = None
    if not applicable:
        reason = "不适用"
    elif not valid:
        if not held:
            reason = f"未持有{TIER_NAMES[p.tier]}称号"
        elif any(t.revoked for t in held):
            reason = f"{TIER_NAMES[p.tier]}称号已撤销"
        else:
            reason = f"{TIER_NAMES[p.tier]}称号在 {as_of} 不在有效期内"
    return applicable, met, reason, max((t.valid_to for t in valid), default=None)


def evaluate(ruleset: RuleSet, facts: EnterpriseFacts, as_of: date) -> EvaluationResult:
    comp = compile_ruleset(ruleset)
    ctx = Ctx(facts, as_of)
    items: list[ItemResult] = []
    unmet: list[str] = []
    gaps: list[Gap] = []

    # 1. prerequisites (decision 6)
    prereqs: list[PrereqResult] = []
    prereq_ok = True
    for cp in comp.prereqs:
        p = cp.pre
        applicable, met, reason, valid_to = prerequisite_outcome(cp, ctx, facts, as_of)
        prereqs.append(PrereqResult(code=p.code, name=p.name, tier=p.tier, levels=p.levels, applicable=applicable,
                                    met=met, title_valid_to=valid_to, reason=reason))
        if not met:
            prereq_ok = False
            unmet.append(f"{p.code}: {p.name} — {reason}")
            gaps.append(Gap(code=p.code, description=f"需在 {as_of} 持有有效的{TIER_NAMES[p.tier]}称号 ({reason})",
                            current=reason, required=f"有效的{TIER_NAMES[p.tier]}称号"))

    # 2. hard conditions
    hard_ok = True
    for cc in comp.hard:
        res, state = _cond_result(ctx, cc, "condition")
        items.append(res)
        if state is not True:
            hard_ok = False
            unmet.append(f"{res.code}: {res.name} — {'要求 ' + (res.threshold or '') if state is False else MISSING}")
            specs: list[GapSpec] = []
            cc.node.gaps(ctx, res.code, specs)
            gaps.extend(Gap(**g) for g in specs)

    # 3. score
    score: Decimal | None = None
    category_scores: dict[str, Decimal] = {}
    score_ok = False
    scored_missing: list[ItemResult] = []
    if comp.items:
        for ci in comp.items:
            cat = ci.item.category
            if ci.item.local_features:
                results = _local_features(ctx, comp, ci.item, cat)
            else:
                results = [_score_item(ctx, ci, cat)]
            head = results[0]
            category_scores[cat] = category_scores.get(cat, ZERO) + (head.points or ZERO)
            if head.reason == MISSING:
                scored_missing.append(head)
            items.extend(results)
        for code in comp.category_max:
            category_scores.setdefault(code, ZERO)
        score = sum(category_scores.values(), ZERO)
        pass_score = ruleset.pass_score or ZERO
        cat_fail = [c for c, mn in comp.category_min.items() if category_scores[c] < mn]
        score_ok = score >= pass_score and not cat_fail

    # 4. direct routes (replace the score condition only)
    route_met: str | None = None
    for cc in comp.routes:
        res, state = _cond_result(ctx, cc, "route")
        items.append(res)
        if state is True and route_met is None:
            route_met = res.code

    if comp.items:
        part_ok = score_ok or route_met is not None
        route = "score" if score_ok else route_met
        if not part_ok:
            assert score is not None
            pass_score = ruleset.pass_score or ZERO
            if score < pass_score:
                unmet.append(f"score: 评价得分 {score}分 — 要求 ≥ {pass_score}分"
                             + (" (或满足任一直通条件)" if comp.routes else ""))
                short = pass_score - score
                gaps.append(Gap(code="score", description=f"评价得分 {score}分 → {pass_score}分: 差{short}分",
                                unit="points", current=f"{score}分", required=f"≥ {pass_score}分",
                                shortfall=short, shortfall_display=f"{short}分"))
            for c, mn in comp.category_min.items():
                got = category_scores[c]
                if got < mn:
                    name = comp.category_names[c]
                    unmet.append(f"score.{c}: {name}类得分 {got}分 — 要求 ≥ {mn}分")
                    gaps.append(Gap(
                        code=f"score.{c}", description=f"{name}类得分 {got}分 → {mn}分: 差{mn - got}分",
                        unit="points", current=f"{got}分", required=f"≥ {mn}分", shortfall=mn - got,
                        shortfall_display=f"{mn - got}分",
                    ))
            for it in scored_missing:
                unmet.append(f"{it.code}: {it.name} — {MISSING}")
    else:
        part_ok = True
        route = None

    if comp.category_names:
        names = comp.category_names
        for it in items:
            if it.kind in ("scored", "local_feature") and it.category is not None:
                it.category_name = names.get(it.category)
    eligible = prereq_ok and hard_ok and part_ok
    if not comp.items and eligible:
        route = "checklist"

    return EvaluationResult(
        ruleset_id=ruleset.id,
        ruleset_version=ruleset.version,
        document_number=ruleset.document_number,
        tier=ruleset.tier,
        level=ruleset.level,
        as_of=as_of,
        eligible=eligible,
        score=score,
        pass_score=ruleset.pass_score,
        category_scores=category_scores,
        items=items,
        route=route,
        prerequisites=prereqs,
        unmet=unmet,
        gaps=gaps,
    )
