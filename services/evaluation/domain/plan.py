"""A rule set compiled into its plan, once per rule-set version: what the rules engine (``engine``) walks.

Conditions become small node objects (metric comparisons, all/any groups, honour/award/创客中国/title facts,
each with its Chinese text and its gap analysis), bands become intervals with their edge rule resolved (and a
binary search among the edges), items and conditions carry the static JSON fragments of their explanation
(``explanation``: the template stored once per rule-set version) and the keys of their memoised outcomes.
The plan is cached on the rule set (``compile_ruleset``); the loader compiles every rule set it loads, so an
error surfaces at load.
"""

from __future__ import annotations

import hashlib
import json
import operator
from bisect import bisect_left
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_CEILING, Decimal
from itertools import pairwise
from typing import Any

from services.evaluation.domain.explanation import (
    MISSING,
    TEMPLATE_FORMAT,
    GapSpec,
    jb,
    jd,
    js,
    jstr,
    key_texts,
)
from services.evaluation.domain.rule_metrics import (
    HUNDRED,
    ZERO,
    Ctx,
    Metric,
    Unit,
    as_number,
    fmt_edge,
    fmt_value,
    fmt_yuan,
    get_metric,
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

# ------------------------------------------------------------------------------------------- conditions

_OPSYM = {">=": "≥", ">": ">", "<=": "≤", "<": "<", "==": "=", "!=": "≠"}
_Q2 = Decimal("0.01")


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
            x = as_number(v)
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
                x = as_number(v)
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
        x = as_number(v)
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
        v = as_number(m.value(ctx))
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


_SHORT_UNITS = {"percent": "个百分点", "years": "年", "rank": "位"}


def _fmt_short(d: Decimal, unit: Unit) -> str:
    """A shortfall in the metric's unit: 0.9个百分点 (of a ratio), 45万元, 2年, 3位."""
    if unit == "ratio":
        return f"{(d * HUNDRED).quantize(_Q2).normalize():f}个百分点"
    if unit == "yuan":
        return fmt_yuan(d)
    return f"{d.normalize():f}{_SHORT_UNITS.get(unit, '')}"


class _Group(Node):
    """全部满足 / 满足其一: decided by the first part whose outcome is ``decisive`` (False for all, True for
    any), else missing (``None``) when a part is, else the other outcome."""

    decisive: bool

    def __init__(self, kids: list[Node]) -> None:
        self.kids = kids

    def leaves(self) -> list[Leaf]:
        return [leaf for k in self.kids for leaf in k.leaves()]

    def eval(self, ctx: Ctx) -> bool | None:
        decisive = self.decisive
        missing = False
        for k in self.kids:
            r = k.eval(ctx)
            if r is decisive:
                return r
            if r is None:
                missing = True
        return None if missing else not decisive


class AllNode(_Group):
    decisive = False

    def __init__(self, kids: list[Node]) -> None:
        super().__init__(kids)
        self.text = " 且 ".join(k.text for k in kids)
        if len(kids) > 1:
            self.text = f"[{self.text}]"

    def applicable(self, ctx: Ctx) -> bool:
        return all(k.eval(ctx) is not False for k in self.kids if isinstance(k, Leaf) and k.selector)

    def gaps(self, ctx: Ctx, code: str, out: list[GapSpec]) -> None:
        for k in self.kids:
            if k.eval(ctx) is not True:
                k.gaps(ctx, code, out)


class AnyNode(_Group):
    decisive = True

    def __init__(self, kids: list[Node]) -> None:
        super().__init__(kids)
        self.text = "(" + " 或 ".join(k.text for k in kids) + ")"

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
    validated facts): two enterprises with equal ones have the same outcome (its memo key, ``CondPart``)."""

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




# ------------------------------------------------------------------------------------------- plan parts

# inputs read from the facts (not the indicators), and the prefix of a 地方特色化 indicator's input name
FACT_INPUTS = frozenset(("founded_on", "region_code", "industry_code", "is_manufacturing", "is_recheck"))
LOCAL_INPUT = "local_indicators."


def _input_names(metrics: Any) -> tuple[str, ...]:
    """The keys of an item's ``inputs`` in their order (the inputs of its metrics, each once)."""
    return tuple(dict.fromkeys(name for m in metrics for name in m.inputs))


ValuesText = tuple[str, Callable[[dict[str, str]], Any]]


def _values_text(names: tuple[str, ...]) -> ValuesText:
    """(format, getter): ``format % getter(inputs)`` is the JSON array of the values of ``names`` from the
    JSON texts of the inputs by name — one item lookup and one formatting in C, instead of a list, a join and
    concatenations (an array per condition and item of every enterprise: the memo's key)."""
    if not names:
        return "[]", _no_values
    return "[" + ",".join(["%s"] * len(names)) + "]", operator.itemgetter(*names)


def _no_values(inputs: dict[str, str]) -> tuple[()]:
    return ()


def _pure(node: Node) -> bool:
    """Whether a condition reads nothing but its metrics (leaves and their combinations): the honour, award,
    创客中国 and title conditions also read lists, titles and the reporting year."""
    if isinstance(node, Leaf | AlwaysNode):
        return True
    if isinstance(node, _Group):
        return all(_pure(k) for k in node.kids)
    return False


def _memoizable(names: tuple[str, ...], nodes: Any) -> bool:
    """Whether the outcome of a condition or item is a function of the JSON texts of its inputs (and the
    decision date, which keys the memo): every node pure, and every input of one type per value text — a
    local indicator may be ``Decimal("1")`` or ``"1"`` (the same text, different outcomes)."""
    return bool(names) and all(_pure(n) for n in nodes) and not any(n.startswith(LOCAL_INPUT) for n in names)


def _pts(d: Decimal) -> str:
    return f"{d.normalize():f}"


class PrereqPart:
    """A prerequisite title (decision 6), optionally only when ``when`` holds."""

    __slots__ = ("head", "levels", "pre", "when")

    def __init__(self, p: Prerequisite) -> None:
        self.pre = p
        self.when = compile_condition(p.when) if p.when else None
        self.levels = frozenset(p.levels) if p.levels else None
        levels = "null" if p.levels is None else "[" + ",".join(jstr(x) for x in p.levels) + "]"
        self.head = (f'{{"code":{jstr(p.code)},"name":{jstr(p.name)},"tier":{jstr(p.tier)},"levels":{levels},'
                     '"applicable":')

    def outcome(self, ctx: Ctx) -> tuple[bool, bool, str | None, date | None]:
        """(applicable, met, Chinese reason, latest valid_to of a title valid at the decision date)."""
        p = self.pre
        as_of = ctx.as_of
        applicable = self.when is None or self.when.eval(ctx) is not False
        held = [t for t in ctx.facts.titles if t.tier == p.tier and (self.levels is None or t.level in self.levels)]
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


class CondPart:
    """A hard condition or direct route: its node and its explanation's static JSON fragments."""

    __slots__ = ("code", "cond", "fact", "hard", "idx", "inputs", "name", "node", "pure", "single", "slot", "text",
                 "uleaves", "unmet", "values")

    def __init__(self, c: Condition, kind: str, templates: list[list[Any]]) -> None:
        node = compile_condition(c)
        leaves = node.leaves()
        metrics = [leaf.metric for leaf in leaves]
        self.cond = c
        self.node = node
        self.single: Leaf | None = leaves[0] if len(leaves) == 1 else None
        self.uleaves: tuple[tuple[Leaf, str], ...] = (
            tuple((leaf, f"{leaf.metric.label}: ") for leaf in dict.fromkeys(leaves)) if len(leaves) > 1 else ()
        )
        names = _input_names(dict.fromkeys(metrics))
        self.inputs = names
        self.values = _values_text(names)
        self.code = c.code or ""
        self.name = c.name or node.text
        self.text = node.text
        self.hard = kind == "condition"
        # the unmet line (JSON) when the condition is False / missing
        self.unmet = (jstr(f"{self.code}: {self.name} — {'要求 ' + (node.text or '')}"),
                      jstr(f"{self.code}: {self.name} — {MISSING}"))
        # memoized by the input values, or by what it reads (a FactNode: honours, awards, 创客中国, titles)
        self.fact = node if isinstance(node, FactNode) else None
        self.pure = self.fact is not None or _memoizable(names, (node,))
        self.slot = -1  # its memo's index (``Plan.memo``) when pure
        self.idx = len(templates)
        templates.append([
            f'{{"code":{jstr(self.code)},"name":{jstr(self.name)},"category":{js(c.category)},'
            f'"category_name":null,"kind":{jstr(kind)},"inputs":',
            list(names), ',"max_points":null', f',"threshold":{jstr(node.text)}',
            f',"source":{js(c.source)},"unconfirmed":{jb(c.unconfirmed)}}}',
        ])


@dataclass
class Features:
    """A province's 特色化 configuration for some years, its items compiled under the rule set's item."""

    cfg: LocalFeatureSet
    items: tuple[ItemPart, ...]


class ItemPart:
    """A scored item: its scales (bands compiled) or options, or the province's 特色化 configurations
    (``features``: by province), and its explanation's static JSON fragments. ``idx`` is its template index
    (-1: a local-feature sub-item, whose text is stored whole)."""

    __slots__ = ("category", "features", "head", "idx", "inputs", "inputs_metrics", "item", "max_points", "multi",
                 "name", "names", "options", "points_key", "pure", "reason_tail", "scale", "scales", "slot", "thr",
                 "threshold", "values")

    def __init__(self, item: Item, favourable: bool, code: str, kind: str, category: str,
                 category_name: str | None, templates: list[list[Any]] | None = None) -> None:
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
        self.item = item
        self.category = category
        self.scales = tuple(scales)
        self.options = tuple(options)
        self.inputs_metrics = tuple(dict.fromkeys(metrics))
        self.threshold = " | ".join(parts)
        self.features: dict[str, list[Features]] | None = None
        self.points_key = ""  # its points' key in a shared context's cache (``Plan``)
        self.name = item.name
        self.max_points = item.max_points
        self.multi = len(scales) > 1
        self.names = _input_names(self.inputs_metrics)
        self.inputs = tuple(zip(self.names, key_texts(self.names), strict=True))
        self.values = _values_text(self.names)
        self.head = (f'{{"code":{jstr(code)},"name":{jstr(item.name)},"category":{jstr(category)},'
                     f'"category_name":{js(category_name)},"kind":{jstr(kind)},"inputs":')
        self.thr = f',"max_points":{jd(item.max_points)},"met":'
        # after met: threshold, then reason (dynamic), then source and unconfirmed
        self.reason_tail = (f',"threshold":{jstr(self.threshold)},"reason":',
                            f',"source":{js(item.source)},"unconfirmed":{jb(item.unconfirmed)}}}')
        self.idx = -1
        if templates is not None:
            self.idx = len(templates)
            templates.append([self.head, list(self.names), f',"max_points":{jd(item.max_points)}',
                              f',"threshold":{jstr(self.threshold)}', self.reason_tail[1]])
        # memoized: the rule set's own items (not the province's local features: their sub-items)
        self.pure = self.idx >= 0 and not item.local_features and _memoizable(self.names, [o.node for o in options])
        self.slot = -1  # its memo's index (``Plan.memo``) when pure
        self.scale = ScaleTexts(self) if self.idx >= 0 and len(scales) == 1 and not options else None


class ScaleTexts:
    """The compact texts of an item scored on one scale (the common shape) that follow its value display,
    prepared per band: ``,band,"points",met,reason]`` with the points capped at the item's maximum."""

    __slots__ = ("bands", "missing", "open", "outside")

    def __init__(self, ip: ItemPart) -> None:
        self.open = f"[{ip.idx},"
        self.bands = {id(b): self.tail(ip, b.points, b.display, False) for b in ip.scales[0].bands}
        self.outside = self.tail(ip, ZERO, "不属于以上档位", False)  # a value in no band
        self.missing = self.tail(ip, ZERO, None, True)  # no value

    @staticmethod
    def tail(ip: ItemPart, points: Decimal, band: str | None, missing: bool) -> str:
        points = min(points, ip.max_points)
        return (f',{js(band)},"{points!s}",{"true" if points > 0 else "false"},'
                f'{jstr(MISSING) if missing else "null"}]')


MEMO_DATES = 2  # decision dates an outcome memo is kept for (``Plan.memo``)


class Plan:
    """A compiled rule set: its prerequisites, hard conditions, direct routes and items with their explanation
    fragments, the explanation template, the indicator fields every evaluation reads, and the outcome memo."""

    __slots__ = ("category_max", "category_min", "category_names", "features", "fields", "hard", "items", "memos",
                 "pass_score", "prefix", "prereqs", "routes", "ruleset", "slots", "template", "template_id")

    def __init__(self, rs: RuleSet) -> None:
        fav = rs.band_edge == "favourable"
        self.ruleset = rs
        self.category_names = {k.code: k.name for k in rs.categories}
        self.category_max = {k.code: k.max_points for k in rs.categories}
        self.category_min = {k.code: k.min_points for k in rs.categories if k.min_points is not None}
        self.pass_score = rs.pass_score or ZERO
        templates: list[list[Any]] = []
        self.prereqs = tuple(PrereqPart(p) for p in rs.prerequisites)
        self.hard = tuple(CondPart(c, "condition", templates) for c in rs.hard_conditions)
        self.routes = tuple(CondPart(c, "route", templates) for c in rs.direct_routes)
        names = self.category_names
        self.items = tuple(ItemPart(i, fav, i.code, "scored", i.category, names.get(i.category), templates)
                           for i in rs.items)
        # the 特色化 configurations by province, compiled under the rule set's local-features item
        self.features: dict[str, list[Features]] = {}
        for ip in self.items:
            if ip.item.local_features:
                ip.features = {}
                for cfg in rs.local_features:
                    subs = tuple(ItemPart(sub, fav, f"{ip.item.code}.{sub.code}", "local_feature", ip.category,
                                          names.get(ip.category)) for sub in cfg.items)
                    ip.features.setdefault(cfg.province, []).append(Features(cfg, subs))
                self.features = self.features or ip.features
            ip.points_key = _points_key(rs, ip.item)
        parts: tuple[CondPart | ItemPart, ...] = (*self.hard, *self.routes, *self.items)
        pure = [part for part in parts if part.pure]
        for slot, part in enumerate(pure):
            part.slot = slot
        self.slots = len(pure)
        self.memos: dict[date, list[dict[Any, Any] | None]] = {}
        # the indicator fields every explained evaluation reads (the others — facts, local indicators — on demand)
        read = [n for p in (*self.hard, *self.routes) for n in p.inputs] + [n for ip in self.items for n in ip.names]
        self.fields = tuple(n for n in dict.fromkeys(read) if n not in FACT_INPUTS and not n.startswith(LOCAL_INPUT))
        self.prefix = (f'{{"ruleset_id":{jstr(rs.id)},"ruleset_version":{int(rs.version)},'
                       f'"document_number":{jstr(rs.document_number)},"tier":{jstr(rs.tier)},'
                       f'"level":{jstr(rs.level)},"as_of":')
        self.template: dict[str, Any] = {
            "format": TEMPLATE_FORMAT, "ruleset_id": str(rs.id), "ruleset_version": int(rs.version),
            "prefix": self.prefix, "pass_score": jd(rs.pass_score), "items": templates,
            "prerequisites": [p.head for p in self.prereqs],
        }
        self.template_id = hashlib.sha256(
            json.dumps(self.template, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()

    def memo(self, as_of: date) -> list[dict[Any, Any] | None]:
        """The outcome memo at ``as_of``: per memoizable condition or item (its ``slot``), its explained outcome
        by the JSON text of its input values (a fact condition's: by what it reads), and the last one the
        score part's unmet lines and gaps by the category scores.

        Most inputs of a rule set are flags, counts and levels (often missing), so most enterprises repeat
        the outcome of a condition or item another one had; its text, unmet line and gaps are then looked up
        instead of evaluated and written again. The outcome is a function of the key and the decision date
        alone (``_memoizable``: metrics read only their declared inputs and the decision date, fact
        conditions what their ``reads`` returns; ``test_engine_modes`` checks both), so the memo changes no
        output. Bounded: a slot whose key took ``MEMO_SIZE`` distinct values (amounts, ratios: they hardly
        repeat) is dropped (``None``: no longer memoized at that date), and ``MEMO_DATES`` dates are kept. A
        list per date, replaced and never cleared while in use: safe with threads."""
        got = self.memos.get(as_of)
        if got is None:
            if len(self.memos) >= MEMO_DATES:
                self.memos = {}
            got = self.memos[as_of] = [{} for _ in range(self.slots + 1)]
        return got


def _points_key(ruleset: RuleSet, item: Item) -> str:
    """The key of an item's points in a context's cache: a digest of everything they depend on (the item's
    definition, the band-edge rule and, for a local-feature item, the rule set's feature configurations), so
    rule sets sharing an item (a draft that changes another parameter) score it once per enterprise."""
    parts = [ruleset.band_edge, item.model_dump_json()]
    if item.local_features:
        parts.extend(f.model_dump_json() for f in ruleset.local_features)
    return "#points:" + hashlib.sha256("\n".join(parts).encode()).hexdigest()


def compile_ruleset(rs: RuleSet) -> Plan:
    """The plan of ``rs``, compiled on first use and cached on the rule set."""
    cached = rs._compiled
    # Keyed by object identity: model_copy(update=...) copies private attributes, so a copy recompiles.
    if isinstance(cached, tuple) and cached[0] == id(rs) and isinstance(cached[1], Plan):
        return cached[1]
    plan = Plan(rs)
    rs._compiled = (id(rs), plan)
    return plan
