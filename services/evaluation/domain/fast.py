"""Fast path of the rules engine for bulk work (re-evaluation jobs), and the normalised form of explanations.

Explanations are stored normalised: ``template(rs)`` is the static part under a rule set (every text that
does not depend on the enterprise: names, categories, thresholds, band tables, sources, UNCONFIRMED flags,
prerequisite names; stored once, keyed by its SHA-256), ``encode(rs, facts, as_of)`` the varying part of one
evaluation (a compact JSON array: values, displays, bands, points, met/reason, inputs, route, prerequisite
outcomes, unmet, gaps; ~1-2 KB instead of ~7 KB), and ``render``/``decode(template, compact)`` rebuild the
full explanation.

``explain(rs, facts, as_of)`` (``encode`` then ``decode``) returns the JSON text of
``engine.evaluate(rs, facts, as_of).model_dump(mode="json")`` — character for character what
``json.dumps(..., ensure_ascii=False, separators=(",", ":"))`` writes for the reference result (same keys in
the same order, Decimals as strings, dates as ISO strings) — plus the eligibility and the score, without
building and validating pydantic models and without serialising the static parts of the explanation again
for every enterprise:

- the evaluation itself runs on the same compiled rule set as the reference (the same condition nodes,
  bands, texts and gap descriptions), so the two cannot drift apart in the rules;
- what does not depend on the enterprise (an item's code, name, category, threshold text, source, …) is
  encoded once per rule set into JSON fragments; only values, displays, bands, points, met/reason, inputs
  and gaps are encoded per enterprise;
- the inputs and value display of a metric are computed once per enterprise;
- the outcome of a condition or item whose inputs repeat across enterprises (flags, counts, levels, missing
  values; the honours, awards and titles a fact condition reads) is computed once per decision date and
  then looked up (``_Plan.memo``), and so are the score part's unmet lines and gaps; an item scored on one
  scale has its bands' texts prepared (``_ScaleTexts``).

``engine.evaluate`` stays the reference; ``tests/evaluation/domain/test_fast_path.py`` compares the two on
every YAML case (under every shipped rule set) and on randomised facts.
"""

from __future__ import annotations

import hashlib
import json
import operator
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from enum import Enum
from json.encoder import encode_basestring as _s
from typing import Any

from services.evaluation.domain.engine import (
    MISSING,
    AllNode,
    AlwaysNode,
    AnyNode,
    CCond,
    CItem,
    Compiled,
    COption,
    FactNode,
    GapSpec,
    Leaf,
    Node,
    _num,
    compile_ruleset,
    prerequisite_outcome,
)
from services.evaluation.domain.facts import EnterpriseFacts
from services.evaluation.domain.rule_metrics import ZERO, Ctx, Metric, Value, fmt_value
from services.evaluation.domain.rules import TIER_NAMES, Item, RuleSet

_FACT_INPUTS = frozenset(("founded_on", "region_code", "industry_code", "is_manufacturing", "is_recheck"))
_MISSING_J = _s(MISSING)
_LOCAL = "local_indicators."

# Outcome memo (see ``_Plan.memo``): distinct input values of a condition or item at a decision date beyond
# which it is no longer memoized, and decision dates kept.
_MEMO_SIZE = 1024
_MEMO_DATES = 2


def _js(v: str | None) -> str:
    return "null" if v is None else _s(v)


def _jd(v: Decimal | None) -> str:
    return "null" if v is None else '"' + str(v) + '"'


def _jb(v: bool) -> str:
    return "true" if v else "false"


def _jv(v: Any) -> str:
    """A Value as JSON (pydantic's JSON mode: Decimal as its string). Decimal first: the commonest."""
    if v is None:
        return "null"
    if isinstance(v, Decimal):
        return '"' + str(v) + '"'
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        return _s(v)
    if isinstance(v, int):
        return int.__repr__(v)
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"), default=str)  # pragma: no cover


def _input_names(metrics: Any) -> tuple[str, ...]:
    """The keys of ``engine._inputs(ctx, metrics)`` in their order (dict.update keeps the first position)."""
    return tuple(dict.fromkeys(name for m in metrics for name in m.inputs))


def _inputs_plan(names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    return tuple((n, ("{" if i == 0 else ",") + _s(n) + ":") for i, n in enumerate(names))


def _values_text(names: tuple[str, ...]) -> tuple[str, Callable[[dict[str, str]], Any]]:
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
    if isinstance(node, AllNode | AnyNode):
        return all(_pure(k) for k in node.kids)
    return False


def _memoizable(names: tuple[str, ...], nodes: Any) -> bool:
    """Whether the outcome of a condition or item is a function of the JSON texts of its inputs (and the
    decision date, which keys the memo): every node pure, and every input of one type per value text — a
    local indicator may be ``Decimal("1")`` or ``"1"`` (the same text, different outcomes)."""
    return bool(names) and all(_pure(n) for n in nodes) and not any(n.startswith(_LOCAL) for n in names)


class _Cond:
    """A hard condition or direct route with its JSON fragments."""

    __slots__ = ("code", "fact", "hard", "idx", "inputs", "name", "node", "pure", "single", "slot", "text",
                 "uleaves", "unmet", "values")

    def __init__(self, cc: CCond, kind: str, templates: list[list[Any]]) -> None:
        node = cc.node
        leaves = node.leaves()
        metrics = [leaf.metric for leaf in leaves]
        self.node = node
        self.single: Leaf | None = leaves[0] if len(leaves) == 1 else None
        self.uleaves: tuple[tuple[Leaf, str], ...] = (
            tuple((leaf, f"{leaf.metric.label}: ") for leaf in dict.fromkeys(leaves)) if len(leaves) > 1 else ()
        )
        names = _input_names(dict.fromkeys(metrics))
        self.inputs = names
        self.values = _values_text(names)
        c = cc.cond
        self.code = c.code or ""
        self.name = c.name or node.text
        self.text = node.text
        self.hard = kind == "condition"
        # the unmet line (JSON) when the condition is False / missing
        self.unmet = (_s(f"{self.code}: {self.name} — {'要求 ' + (node.text or '')}"),
                      _s(f"{self.code}: {self.name} — {MISSING}"))
        # memoized by the input values, or by what it reads (a FactNode: honours, awards, 创客中国, titles)
        self.fact = node if isinstance(node, FactNode) else None
        self.pure = self.fact is not None or _memoizable(names, (node,))
        self.slot = -1  # its memo's index (``_Plan``) when pure
        self.idx = len(templates)
        templates.append([
            f'{{"code":{_s(self.code)},"name":{_s(self.name)},"category":{_js(c.category)},'
            f'"category_name":null,"kind":{_s(kind)},"inputs":',
            list(names), ',"max_points":null', f',"threshold":{_s(node.text)}',
            f',"source":{_js(c.source)},"unconfirmed":{_jb(c.unconfirmed)}}}',
        ])


class _Plan:
    """What ``encode`` needs of a rule set, prepared once: the compiled rule set, the JSON fragments, the
    indicator fields read, and the outcome memo."""

    __slots__ = ("category_names", "comp", "features", "fields", "hard", "items", "memos", "pass_score", "prefix",
                 "routes", "slots", "template", "template_id")

    def __init__(self, rs: RuleSet, comp: Compiled) -> None:
        self.comp = comp
        self.category_names = comp.category_names
        self.pass_score = rs.pass_score or ZERO
        templates: list[list[Any]] = []
        self.hard = tuple(_Cond(cc, "condition", templates) for cc in comp.hard)
        self.routes = tuple(_Cond(cc, "route", templates) for cc in comp.routes)
        self.items = tuple(self.scored(ci, ci.item.code, "scored", ci.item.category, templates) for ci in comp.items)
        parts: tuple[_Cond | _ItemPlan, ...] = (*self.hard, *self.routes, *self.items)
        pure = [part for part in parts if part.pure]
        for slot, part in enumerate(pure):
            part.slot = slot
        self.slots = len(pure)
        self.memos: dict[date, list[dict[Any, Any] | None]] = {}
        # the indicator fields every evaluation reads (the others — facts, local indicators — on demand)
        names = [n for p in (*self.hard, *self.routes) for n in p.inputs]
        names += [n for ip in self.items for n in ip.names]
        self.fields = tuple(n for n in dict.fromkeys(names) if n not in _FACT_INPUTS and not n.startswith(_LOCAL))
        self.features: dict[tuple[str, int], tuple[_ItemPlan, ...]] = {}
        self.prefix = (f'{{"ruleset_id":{_s(rs.id)},"ruleset_version":{int(rs.version)},'
                       f'"document_number":{_s(rs.document_number)},"tier":{_s(rs.tier)},"level":{_s(rs.level)},'
                       '"as_of":')
        prereqs = []
        for cp in comp.prereqs:
            p = cp.pre
            levels = "null" if p.levels is None else "[" + ",".join(_s(x) for x in p.levels) + "]"
            prereqs.append(f'{{"code":{_s(p.code)},"name":{_s(p.name)},"tier":{_s(p.tier)},"levels":{levels},'
                           '"applicable":')
        self.template: dict[str, Any] = {
            "format": TEMPLATE_FORMAT, "ruleset_id": str(rs.id), "ruleset_version": int(rs.version),
            "prefix": self.prefix, "pass_score": _jd(rs.pass_score), "items": templates, "prerequisites": prereqs,
        }
        self.template_id = hashlib.sha256(
            json.dumps(self.template, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()

    def scored(
        self, ci: CItem, code: str, kind: str, category: str, templates: list[list[Any]] | None = None
    ) -> _ItemPlan:
        names = self.category_names
        return _ItemPlan(ci, code, kind, category, names.get(category) if names else None, templates)

    def feature_items(self, parent: Item, cf: Any) -> tuple[_ItemPlan, ...]:
        key = (parent.code, id(cf))
        got = self.features.get(key)
        if got is None:
            got = self.features[key] = tuple(
                self.scored(ci, f"{parent.code}.{ci.item.code}", "local_feature", parent.category) for ci in cf.items
            )
        return got

    def memo(self, as_of: date) -> list[dict[Any, Any] | None]:
        """The outcome memo at ``as_of``: per memoizable condition or item (its ``slot``), its compact outcome
        by the JSON text of its input values (a fact condition's: by what it reads), and the last one the
        score part's unmet lines and gaps by the category scores.

        Most inputs of a rule set are flags, counts and levels (often missing), so most enterprises repeat
        the outcome of a condition or item another one had; its text, unmet line and gaps are then looked up
        instead of evaluated and written again. The outcome is a function of the key and the decision date
        alone (``_memoizable``: metrics read only their declared inputs and the decision date, fact
        conditions what their ``reads`` returns; ``test_fast_path`` checks both), so the memo changes no
        output. Bounded: a slot whose key took ``_MEMO_SIZE`` distinct values (amounts, ratios: they hardly
        repeat) is dropped (``None``: no longer memoized at that date), and ``_MEMO_DATES`` dates are kept. A
        list per date, replaced and never cleared while in use: safe with threads."""
        got = self.memos.get(as_of)
        if got is None:
            if len(self.memos) >= _MEMO_DATES:
                self.memos = {}
            got = self.memos[as_of] = [{} for _ in range(self.slots + 1)]
        return got


class _ItemPlan:
    __slots__ = ("ci", "head", "idx", "inputs", "item", "max_points", "multi", "name", "names", "pure",
                 "reason_tail", "scale", "slot", "thr", "values")

    def __init__(self, ci: CItem, code: str, kind: str, category: str, category_name: str | None,
                 templates: list[list[Any]] | None = None) -> None:
        item = ci.item
        self.ci = ci
        self.item: Item = item
        self.name = item.name
        self.max_points = item.max_points
        self.multi = len(ci.scales) > 1
        self.names = _input_names(ci.inputs_metrics)
        self.inputs = _inputs_plan(self.names)
        self.values = _values_text(self.names)
        self.head = (f'{{"code":{_s(code)},"name":{_s(item.name)},"category":{_s(category)},'
                     f'"category_name":{_js(category_name)},"kind":{_s(kind)},"inputs":')
        self.thr = f',"max_points":{_jd(item.max_points)},"met":'
        # after met: threshold, then reason (dynamic), then source and unconfirmed
        self.reason_tail = (f',"threshold":{_s(ci.threshold)},"reason":',
                            f',"source":{_js(item.source)},"unconfirmed":{_jb(item.unconfirmed)}}}')
        self.idx = -1  # local-feature sub-items have no template: stored whole
        if templates is not None:
            self.idx = len(templates)
            templates.append([self.head, list(self.names), f',"max_points":{_jd(item.max_points)}',
                              f',"threshold":{_s(ci.threshold)}', self.reason_tail[1]])
        # memoized: the rule set's own items (not the province's local features: their sub-items)
        self.pure = self.idx >= 0 and not item.local_features and _memoizable(self.names, [o.node for o in ci.options])
        self.slot = -1  # its memo's index (``_Plan``) when pure
        self.scale = _ScaleTexts(self) if self.idx >= 0 and len(ci.scales) == 1 and not ci.options else None


class _ScaleTexts:
    """The texts of an item scored on one scale (the common shape) that follow its value display, prepared
    per band: ``,band,"points",met,reason]`` with the points capped as ``_score_outcome`` caps them."""

    __slots__ = ("bands", "missing", "open", "outside")

    def __init__(self, ip: _ItemPlan) -> None:
        self.open = f"[{ip.idx},"
        self.bands = {id(b): self.tail(ip, b.points, b.display, False) for b in ip.ci.scales[0].bands}
        self.outside = self.tail(ip, ZERO, "不属于以上档位", False)  # a value in no band
        self.missing = self.tail(ip, ZERO, None, True)  # no value

    @staticmethod
    def tail(ip: _ItemPlan, points: Decimal, band: str | None, missing: bool) -> tuple[Decimal, str]:
        points = min(points, ip.max_points)
        return points, (f',{_js(band)},"{points!s}",{"true" if points > 0 else "false"},'
                        f'{_MISSING_J if missing else "null"}]')


_LAST: tuple[RuleSet, _Plan] | None = None  # the plan of the rule set evaluated last (a job evaluates one)


def _plan_of(rs: RuleSet) -> _Plan:
    """The plan of ``rs``, without ``compile_ruleset``'s cache check when ``rs`` is the last rule set seen."""
    global _LAST
    last = _LAST
    if last is not None and last[0] is rs:
        return last[1]
    plan = _plan(rs, compile_ruleset(rs))
    _LAST = (rs, plan)
    return plan


def _plan(rs: RuleSet, comp: Compiled) -> _Plan:
    plan = comp.fast
    if plan is None:
        plan = comp.fast = _Plan(rs, comp)
    assert isinstance(plan, _Plan)
    return plan


class _Inputs(dict[str, str]):
    """The JSON texts of an enterprise's inputs by name: the indicator fields of the plan read up front,
    facts and local indicators on first use."""

    __slots__ = ("ctx",)

    def __init__(self, ctx: Ctx, fields: tuple[str, ...]) -> None:
        super().__init__()
        self.ctx = ctx
        ind = ctx.ind
        for n in fields:
            self[n] = _field_json(getattr(ind, n))

    def __missing__(self, name: str) -> str:
        ctx = self.ctx
        v: Any
        if name.startswith(_LOCAL):
            v = ctx.ind.local_indicators.get(name[len(_LOCAL):])
        elif name in _FACT_INPUTS:
            v = getattr(ctx.facts, name)
            if isinstance(v, date):
                v = v.isoformat()
        else:
            v = getattr(ctx.ind, name)
        j = self[name] = _field_json(v)
        return j


def _field_json(v: Any) -> str:
    """An input value as the reference's JSON (``_jv``; enumerations as their value). The exact types of most
    values are tested first: cheaper than the isinstance checks (every input of every enterprise passes here)."""
    if v is None:
        return "null"
    cls = type(v)
    if cls is Decimal:
        return '"' + str(v) + '"'
    if cls is int:
        return int.__repr__(v)
    if cls is bool:
        return "true" if v else "false"
    if isinstance(v, Enum):
        return _s(str(v.value))
    return _jv(v)


class _Env:
    """Per-enterprise state: the context, the JSON of the inputs, value displays of metrics, the memo."""

    __slots__ = ("ctx", "disp", "inp", "memo")

    def __init__(self, ctx: Ctx, plan: _Plan) -> None:
        self.ctx = ctx
        self.inp = _Inputs(ctx, plan.fields)
        self.disp: dict[str, str] = {}
        self.memo = plan.memo(ctx.as_of)

    def display(self, m: Metric) -> str:
        s = self.disp.get(m.name)
        if s is None:
            s = self.disp[m.name] = fmt_value(m.value(self.ctx), m.unit)
        return s

    def inputs(self, plan: tuple[tuple[str, str], ...]) -> str:
        """The inputs object (full text)."""
        if not plan:
            return "{}"
        inp = self.inp
        return "".join([key + inp[name] for name, key in plan]) + "}"

    def values(self, plan: tuple[str, Callable[[dict[str, str]], Any]]) -> str:
        """The inputs' values as a JSON array (compact form; the names are in the template)."""
        text: str = plan[0] % plan[1](self.inp)
        return text


def _gap(spec: GapSpec) -> str:
    """A gap in the compact form: the values of the reference's keys (``_GAP_KEYS``) as an array."""
    return (f'[{_s(spec["code"])},{_s(spec["description"])},{_js(spec.get("metric"))},{_js(spec.get("unit"))},'
            f'{_js(spec.get("current"))},{_s(spec["required"])},{_jd(spec.get("shortfall"))},'
            f'{_js(spec.get("shortfall_display"))},{_jd(spec.get("yuan_needed"))}]')


_GAP_KEYS = tuple(f'{"{" if i == 0 else ","}"{k}":' for i, k in enumerate(
    ("code", "description", "metric", "unit", "current", "required", "shortfall", "shortfall_display",
     "yuan_needed")))

CondOutcome = tuple[str, bool | None, str | None, tuple[str, ...]]  # compact item, state, unmet line, gaps


def _cond(env: _Env, cp: _Cond) -> CondOutcome:
    """The outcome of a hard condition or direct route (its unmet line and gaps: hard conditions only),
    from the memo when the condition has a slot."""
    values = env.values(cp.values)
    memo = env.memo[cp.slot] if cp.slot >= 0 else None
    if memo is None:
        return _cond_outcome(env, cp, values)
    key = values if cp.fact is None else cp.fact.reads(env.ctx)
    got: CondOutcome | None = memo.get(key)
    if got is None:
        got = _cond_outcome(env, cp, values)
        _remember(env, cp.slot, memo, key, got)
    return got


def _remember(env: _Env, slot: int, memo: dict[Any, Any], key: Any, outcome: Any) -> None:
    """Store a new outcome, or drop the slot once its key took ``_MEMO_SIZE`` values (``_Plan.memo``)."""
    if len(memo) < _MEMO_SIZE:
        memo[key] = outcome
    else:
        env.memo[slot] = None


def _cond_outcome(env: _Env, cp: _Cond, values: str) -> CondOutcome:
    ctx = env.ctx
    node = cp.node
    state = node.eval(ctx)
    value: Value = None
    single = cp.single
    if single is not None:
        value = single.metric.value(ctx)
        display = env.display(single.metric)
    elif cp.uleaves:
        display = "; ".join(label + env.display(leaf.metric) for leaf, label in cp.uleaves)
    else:
        display = node.current(ctx) if isinstance(node, FactNode) else ""
    reason = "null" if state is True else (_MISSING_J if state is None else '"未达到要求"')
    text = (f'[{cp.idx},{values},{_jv(value)},{_s(display)},null,null,'
            f'{"true" if state is True else "false"},{reason}]')
    if state is True or not cp.hard:
        return text, state, None, ()
    specs: list[GapSpec] = []
    node.gaps(ctx, cp.code, specs)
    return text, state, cp.unmet[state is None], tuple(_gap(g) for g in specs)


ScoreOutcome = tuple[str, Decimal, bool]  # item (compact, or whole JSON text without a template), points, 缺少数据


def _score(env: _Env, ip: _ItemPlan) -> ScoreOutcome:
    """The outcome of a scored item, from the memo when the item has a slot."""
    memo = env.memo[ip.slot] if ip.slot >= 0 else None
    if memo is None:
        return _score_outcome(env, ip, None)
    values = env.values(ip.values)
    got: ScoreOutcome | None = memo.get(values)
    if got is None:
        got = _score_outcome(env, ip, values)
        _remember(env, ip.slot, memo, values, got)
    return got


def _score_outcome(env: _Env, ip: _ItemPlan, values: str | None) -> ScoreOutcome:
    if ip.scale is not None:
        return _scale_outcome(env, ip, ip.scale, values)
    ctx = env.ctx
    ci = ip.ci
    points = ZERO
    band: str | None = None
    value: Value = None
    missing = False
    if ci.scales:
        best: tuple[Decimal, str] | None = None
        shown: list[str] = []
        any_value = False
        multi = ip.multi
        for sc in ci.scales:
            m = sc.metric
            v = m.value(ctx)
            shown.append(f"{m.label}: {env.display(m)}" if multi else env.display(m))
            x = _num(v)
            if x is None:
                continue
            any_value = True
            if value is None:
                value = v
            b = sc.pick(x)
            p, d = (b.points, b.display) if b else (ZERO, "不属于以上档位")
            if best is None or p > best[0]:
                best = (p, d if not multi else f"{m.label} {d}")
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
            if ip.item.aggregate == "sum":
                points = sum((o.points for o in met_opts), ZERO)
            else:
                points = max(o.points for o in met_opts)
            band = "、".join(o.label for o in met_opts)
        else:
            band = "不属于以上"
            missing = all_missing
        display = band
    points = min(points, ip.max_points)
    if ip.idx >= 0:
        if values is None:
            values = env.values(ip.values)
        return (f'[{ip.idx},{values},{_jv(value)},{_s(display)},{_js(band)},"{points!s}",'
                f'{"true" if points > 0 else "false"},{_MISSING_J if missing else "null"}]'), points, missing
    rt = ip.reason_tail
    return (f'{ip.head}{env.inputs(ip.inputs)},"value":{_jv(value)},"value_display":{_s(display)},'
            f'"band":{_js(band)},"points":"{points!s}"{ip.thr}{"true" if points > 0 else "false"}'
            f'{rt[0]}{_MISSING_J if missing else "null"}{rt[1]}'), points, missing


def _scale_outcome(env: _Env, ip: _ItemPlan, texts: _ScaleTexts, values: str | None) -> ScoreOutcome:
    """``_score_outcome`` of an item scored on one scale, with its band's prepared text."""
    sc = ip.ci.scales[0]
    m = sc.metric
    v = m.value(env.ctx)
    display = env.display(m)
    x = _num(v)
    if x is None:
        points, tail = texts.missing
        value = "null"
    else:
        b = sc.pick(x)
        points, tail = texts.outside if b is None else texts.bands[id(b)]
        value = _jv(v)
    if values is None:
        values = env.values(ip.values)
    return f"{texts.open}{values},{value},{_s(display)}{tail}", points, x is None


def _plain_item(code: str, name: str, category: str, category_name: str | None, display: str, band: str | None,
                points: Decimal, max_points: Decimal, reason: str | None, source: str | None,
                unconfirmed: bool) -> str:
    return (f'{{"code":{_s(code)},"name":{_s(name)},"category":{_s(category)},"category_name":{_js(category_name)},'
            f'"kind":"scored","inputs":{{}},"value":null,"value_display":{_s(display)},"band":{_js(band)},'
            f'"points":{_jd(points)},"max_points":{_jd(max_points)},"met":{_jb(points > 0)},"threshold":null,'
            f'"reason":{_js(reason)},"source":{_js(source)},"unconfirmed":{_jb(unconfirmed)}}}')


def _local_features(
    env: _Env, comp: Compiled, plan: _Plan, item: Item, category: str
) -> list[tuple[str, Decimal, bool]]:
    ctx = env.ctx
    region = ctx.facts.region_code
    province = f"{region[:2]}0000" if region else None
    names = plan.category_names
    category_name = names.get(category) if names else None
    chosen = None
    for f in comp.features.get(province or "", []):
        if f.cfg.covers(ctx.ref_year) and (chosen is None or f.cfg.from_year > chosen.cfg.from_year):
            chosen = f
    if chosen is None:
        reason = MISSING if province is None else "本省该年度未配置特色化指标"
        return [(_plain_item(item.code, item.name, category, category_name, "本省未配置特色化指标", None, ZERO,
                             item.max_points, reason, item.source, item.unconfirmed), ZERO, reason == MISSING)]
    sub_plans = plan.feature_items(item, chosen)
    subs = [_score(env, ip) for ip in sub_plans]
    total = min(sum((p or ZERO for _, p, _ in subs), ZERO), item.max_points)
    missing = all(m for _, _, m in subs)
    head = _plain_item(
        item.code, item.name, category, category_name,
        "; ".join(f"{ip.name} {p}分" for ip, (_, p, _) in zip(sub_plans, subs, strict=True)),
        f"{chosen.cfg.province} {chosen.cfg.from_year}年起特色化指标", total, item.max_points,
        MISSING if missing else None, chosen.cfg.source or item.source, item.unconfirmed or chosen.cfg.unconfirmed,
    )
    return [(head, total, missing), *subs]


def encode(ruleset: RuleSet, facts: EnterpriseFacts, as_of: date) -> tuple[str, bool, Decimal | None]:
    """(compact JSON text of the varying part of the explanation, eligible, score) of
    ``engine.evaluate(ruleset, facts, as_of)``; ``render(template(ruleset), json.loads(compact))`` is the
    reference result's JSON text. The compact form is a JSON array::

        [as_of, eligible, score, [[category, points], …], items, route, prerequisites, unmet, gaps]

    an item is ``[template index, [input values…], value, value_display, band, points, met, reason]`` or,
    for the local-feature items (whose shape depends on the province and year), its whole JSON text as a
    string; a prerequisite is ``[applicable, met, title_valid_to, reason]``; unmet as in the reference; a
    gap is the array of its values. Only arrays, strings, integers, booleans and null: a jsonb round trip
    (which reorders object keys) keeps it intact."""
    plan = _plan_of(ruleset)
    comp = plan.comp
    ctx = Ctx(facts, as_of)
    env = _Env(ctx, plan)
    items: list[str] = []
    unmet: list[str] = []  # JSON texts
    gaps: list[str] = []

    # 1. prerequisites
    prereqs: list[str] = []
    prereq_ok = True
    for cp in comp.prereqs:
        p = cp.pre
        applicable, met, reason, valid_to = prerequisite_outcome(cp, ctx, facts, as_of)
        prereqs.append(f'[{_jb(applicable)},{_jb(met)},'
                       f'{"null" if valid_to is None else _s(valid_to.isoformat())},{_js(reason)}]')
        if not met:
            prereq_ok = False
            unmet.append(_s(f"{p.code}: {p.name} — {reason}"))
            name = TIER_NAMES[p.tier]
            gaps.append(_gap(dict(code=p.code, description=f"需在 {as_of} 持有有效的{name}称号 ({reason})",
                                  current=reason, required=f"有效的{name}称号")))

    # 2. hard conditions
    hard_ok = True
    for hc in plan.hard:
        text, state, unmet_line, cond_gaps = _cond(env, hc)
        items.append(text)
        if unmet_line is not None:
            hard_ok = False
            unmet.append(unmet_line)
            gaps.extend(cond_gaps)

    # 3. score
    score: Decimal | None = None
    category_scores: dict[str, Decimal] = {}
    score_ok = False
    scored_missing: list[_ItemPlan] = []
    if comp.items:
        for ip in plan.items:
            it = ip.item
            cat = it.category
            if not it.local_features:
                text, head_points, head_missing = _score(env, ip)
                items.append(text)
            else:
                results = _local_features(env, comp, plan, it, cat)
                items.extend(_s(r) for r, _, _ in results)
                _, head_points, head_missing = results[0]
            category_scores[cat] = category_scores.get(cat, ZERO) + (head_points or ZERO)
            if head_missing:
                scored_missing.append(ip)
        for code in comp.category_max:
            category_scores.setdefault(code, ZERO)
        score = sum(category_scores.values(), ZERO)
        cat_fail = [c for c, mn in comp.category_min.items() if category_scores[c] < mn]
        score_ok = score >= plan.pass_score and not cat_fail

    # 4. direct routes
    route_met: str | None = None
    for rc in plan.routes:
        text, state, _, _ = _cond(env, rc)
        items.append(text)
        if state is True and route_met is None:
            route_met = rc.code

    route: str | None
    cats = ",".join([f'[{_s(k)},"{v!s}"]' for k, v in category_scores.items()])
    if comp.items:
        part_ok = score_ok or route_met is not None
        route = "score" if score_ok else route_met
        if not part_ok:
            assert score is not None
            score_unmet, score_gaps = _score_unmet(env, plan, cats, score, category_scores, scored_missing)
            unmet.extend(score_unmet)
            gaps.extend(score_gaps)
    else:
        part_ok = True
        route = None

    eligible = prereq_ok and hard_ok and part_ok
    if not comp.items and eligible:
        route = "checklist"

    text = (f'[{_s(as_of.isoformat())},{_jb(eligible)},{_jd(score)},[{cats}],[{",".join(items)}],{_js(route)},'
            f'[{",".join(prereqs)}],[{",".join(unmet)}],[{",".join(gaps)}]]')
    return text, eligible, score


ScoreUnmet = tuple[tuple[str, ...], tuple[str, ...]]  # unmet lines (JSON), gaps


def _score_unmet(env: _Env, plan: _Plan, cats: str, score: Decimal, category_scores: dict[str, Decimal],
                 scored_missing: list[_ItemPlan]) -> ScoreUnmet:
    """The unmet lines and gaps of a scored part that is not met (no direct route either), from the memo:
    they are a function of the category scores (``cats``, their exact texts; the score is their sum) and of
    the items missing data."""
    memo = env.memo[plan.slots]
    if memo is None:
        return _score_unmet_outcome(plan, score, category_scores, scored_missing)
    key = (cats, tuple([ip.idx for ip in scored_missing]))
    got: ScoreUnmet | None = memo.get(key)
    if got is None:
        got = _score_unmet_outcome(plan, score, category_scores, scored_missing)
        _remember(env, plan.slots, memo, key, got)
    return got


def _score_unmet_outcome(plan: _Plan, score: Decimal, category_scores: dict[str, Decimal],
                         scored_missing: list[_ItemPlan]) -> ScoreUnmet:
    comp = plan.comp
    pass_score = plan.pass_score
    unmet: list[str] = []
    gaps: list[str] = []
    if score < pass_score:
        unmet.append(_s(f"score: 评价得分 {score}分 — 要求 ≥ {pass_score}分"
                        + (" (或满足任一直通条件)" if comp.routes else "")))
        short = pass_score - score
        gaps.append(_gap(dict(code="score", description=f"评价得分 {score}分 → {pass_score}分: 差{short}分",
                              unit="points", current=f"{score}分", required=f"≥ {pass_score}分",
                              shortfall=short, shortfall_display=f"{short}分")))
    for c, mn in comp.category_min.items():
        got = category_scores[c]
        if got < mn:
            name = comp.category_names[c]
            unmet.append(_s(f"score.{c}: {name}类得分 {got}分 — 要求 ≥ {mn}分"))
            gaps.append(_gap(dict(
                code=f"score.{c}", description=f"{name}类得分 {got}分 → {mn}分: 差{mn - got}分",
                unit="points", current=f"{got}分", required=f"≥ {mn}分", shortfall=mn - got,
                shortfall_display=f"{mn - got}分",
            )))
    for ip in scored_missing:
        unmet.append(_s(f"{ip.item.code}: {ip.item.name} — {MISSING}"))
    return tuple(unmet), tuple(gaps)


TEMPLATE_FORMAT = 1


def template(ruleset: RuleSet) -> tuple[str, dict[str, Any]]:
    """(id, static part) of the explanations under ``ruleset``: every text that does not depend on the
    enterprise (JSON-serialisable; the id is a SHA-256 of its content, so a change of the static texts makes
    a new template and stored compact forms keep decoding with the one they were written with)."""
    plan = _plan(ruleset, compile_ruleset(ruleset))
    return plan.template_id, plan.template


class _Decoder:
    __slots__ = ("items", "pass_score", "prefix", "prereqs")

    def __init__(self, tpl: dict[str, Any]) -> None:
        if tpl.get("format") != TEMPLATE_FORMAT:
            raise ValueError(f"unknown explanation template format {tpl.get('format')!r}")
        self.prefix: str = tpl["prefix"]
        self.pass_score: str = tpl["pass_score"]
        self.prereqs: list[str] = list(tpl["prerequisites"])
        self.items = [(head, tuple(("{" if i == 0 else ",") + _s(n) + ":" for i, n in enumerate(names)), mp, thr, tail)
                      for head, names, mp, thr, tail in tpl["items"]]


_DECODERS: dict[str, _Decoder] = {}


def _dv(v: Any) -> str:
    """A decoded compact value back as the reference's JSON text (strings, integers, booleans, null)."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        return _s(v)
    if isinstance(v, int):
        return int.__repr__(v)
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))


def render(tpl: dict[str, Any], compact: Any, template_id: str | None = None) -> str:
    """The full explanation's JSON text (the reference's, character for character) from the rule set's
    template and the compact form (``json.loads`` of what ``encode`` wrote)."""
    dec = _DECODERS.get(template_id) if template_id else None
    if dec is None:
        dec = _Decoder(tpl)
        if template_id:
            _DECODERS[template_id] = dec
    as_of, eligible, score, cats, items, route, prereqs, unmet, gaps = compact
    tpls = dec.items
    parts: list[str] = []
    for it in items:
        if isinstance(it, str):
            parts.append(it)
            continue
        idx, values, value, display, band, points, met, reason = it
        head, keys, mp, thr, tail = tpls[idx]
        inputs = "".join([k + _dv(x) for k, x in zip(keys, values, strict=True)]) + "}" if keys else "{}"
        parts.append(f'{head}{inputs},"value":{_dv(value)},"value_display":{_s(display)},"band":{_js(band)},'
                     f'"points":{_js(points)}{mp},"met":{_jb(met)}{thr},"reason":{_js(reason)}{tail}')
    pre = [f'{head}{_jb(a)},"met":{_jb(m)},"title_valid_to":{_js(vt)},"reason":{_js(r)}}}'
           for head, (a, m, vt, r) in zip(dec.prereqs, prereqs, strict=True)]
    gap_texts = ["".join([k + _js(x) for k, x in zip(_GAP_KEYS, g, strict=True)]) + "}" for g in gaps]
    cat_text = ",".join(f'{_s(k)}:{_s(v)}' for k, v in cats)
    return (f'{dec.prefix}{_s(as_of)},"eligible":{_jb(eligible)},"score":{_js(score)},'
            f'"pass_score":{dec.pass_score},"category_scores":{{{cat_text}}},"items":[{",".join(parts)}],'
            f'"route":{_js(route)},"prerequisites":[{",".join(pre)}],'
            f'"unmet":[{",".join(_s(u) for u in unmet)}],"gaps":[{",".join(gap_texts)}]}}')


def decode(tpl: dict[str, Any], compact: str, template_id: str | None = None) -> str:
    """``render`` from the compact form's JSON text."""
    return render(tpl, json.loads(compact), template_id)


def explain(ruleset: RuleSet, facts: EnterpriseFacts, as_of: date) -> tuple[str, bool, Decimal | None]:
    """(JSON text of the reference result, eligible, score) of ``engine.evaluate(ruleset, facts, as_of)``:
    ``encode`` then ``decode`` with the rule set's template."""
    compact, eligible, score = encode(ruleset, facts, as_of)
    tid, tpl = template(ruleset)
    return decode(tpl, compact, tid), eligible, score


def evaluate_json(ruleset: RuleSet, facts: EnterpriseFacts, as_of: date) -> dict[str, Any]:
    """``engine.evaluate(ruleset, facts, as_of).model_dump(mode="json")`` via the fast path."""
    data: dict[str, Any] = json.loads(explain(ruleset, facts, as_of)[0])
    return data
