"""Fast path of the rules engine for bulk work (re-evaluation jobs).

``explain(rs, facts, as_of)`` returns the JSON text of ``engine.evaluate(rs, facts, as_of).model_dump(mode="json")``
— character for character what ``json.dumps(..., ensure_ascii=False, separators=(",", ":"))`` writes for the
reference result (same keys in the same order, Decimals as strings, dates as ISO strings) — plus the
eligibility and the score, without building and validating pydantic models and without serialising the
static parts of the explanation again for every enterprise:

- the evaluation itself runs on the same compiled rule set as the reference (the same condition nodes,
  bands, texts and gap descriptions), so the two cannot drift apart in the rules;
- what does not depend on the enterprise (an item's code, name, category, threshold text, source, …) is
  encoded once per rule set into JSON fragments; only values, displays, bands, points, met/reason, inputs
  and gaps are encoded per enterprise;
- the inputs and value display of a metric are computed once per enterprise.

``engine.evaluate`` stays the reference; ``tests/evaluation/domain/test_fast_path.py`` compares the two on
every YAML case (under every shipped rule set) and on randomised facts.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from enum import Enum
from json.encoder import encode_basestring as _s
from typing import Any

from services.evaluation.domain.engine import (
    MISSING,
    CCond,
    CItem,
    Compiled,
    COption,
    FactNode,
    GapSpec,
    Leaf,
    _num,
    compile_ruleset,
)
from services.evaluation.domain.facts import EnterpriseFacts
from services.evaluation.domain.rule_metrics import ZERO, Ctx, Metric, Value, fmt_value
from services.evaluation.domain.rules import TIER_NAMES, Item, RuleSet

_FACT_INPUTS = frozenset(("founded_on", "region_code", "industry_code", "is_manufacturing", "is_recheck"))
_MISSING_J = _s(MISSING)


def _js(v: str | None) -> str:
    return "null" if v is None else _s(v)


def _jd(v: Decimal | None) -> str:
    return "null" if v is None else '"' + str(v) + '"'


def _jb(v: bool) -> str:
    return "true" if v else "false"


def _jv(v: Any) -> str:
    """A Value as JSON (pydantic's JSON mode: Decimal as its string)."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, Decimal):
        return '"' + str(v) + '"'
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


class _Cond:
    """A hard condition or direct route with its JSON fragments."""

    __slots__ = ("code", "head", "inputs", "mid", "name", "node", "single", "tail", "text", "thr", "uleaves")

    def __init__(self, cc: CCond, kind: str) -> None:
        node = cc.node
        leaves = node.leaves()
        metrics = [leaf.metric for leaf in leaves]
        self.node = node
        self.single: Leaf | None = leaves[0] if len(leaves) == 1 else None
        self.uleaves: tuple[tuple[Leaf, str], ...] = (
            tuple((leaf, f"{leaf.metric.label}: ") for leaf in dict.fromkeys(leaves)) if len(leaves) > 1 else ()
        )
        self.inputs = _inputs_plan(_input_names(dict.fromkeys(metrics)))
        c = cc.cond
        self.code = c.code or ""
        self.name = c.name or node.text
        self.text = node.text
        self.head = (f'{{"code":{_s(self.code)},"name":{_s(self.name)},"category":{_js(c.category)},'
                     f'"category_name":null,"kind":{_s(kind)},"inputs":')
        self.mid = ',"band":null,"points":null,"max_points":null,"met":'
        self.thr = f',"threshold":{_s(node.text)},"reason":'
        self.tail = f',"source":{_js(c.source)},"unconfirmed":{_jb(c.unconfirmed)}}}'


class _Plan:
    __slots__ = ("category_names", "features", "hard", "items", "prefix", "routes")

    def __init__(self, rs: RuleSet, comp: Compiled) -> None:
        self.category_names = comp.category_names
        self.hard = tuple(_Cond(cc, "condition") for cc in comp.hard)
        self.routes = tuple(_Cond(cc, "route") for cc in comp.routes)
        self.items = tuple(self.scored(ci, ci.item.code, "scored", ci.item.category) for ci in comp.items)
        self.features: dict[tuple[str, int], tuple[_ItemPlan, ...]] = {}
        self.prefix = (f'{{"ruleset_id":{_s(rs.id)},"ruleset_version":{int(rs.version)},'
                       f'"document_number":{_s(rs.document_number)},"tier":{_s(rs.tier)},"level":{_s(rs.level)},'
                       '"as_of":')

    def scored(self, ci: CItem, code: str, kind: str, category: str) -> _ItemPlan:
        names = self.category_names
        return _ItemPlan(ci, code, kind, category, names.get(category) if names else None)

    def feature_items(self, parent: Item, cf: Any) -> tuple[_ItemPlan, ...]:
        key = (parent.code, id(cf))
        got = self.features.get(key)
        if got is None:
            got = self.features[key] = tuple(
                self.scored(ci, f"{parent.code}.{ci.item.code}", "local_feature", parent.category) for ci in cf.items
            )
        return got


class _ItemPlan:
    __slots__ = ("ci", "head", "inputs", "item", "max_points", "multi", "name", "reason_tail", "thr")

    def __init__(self, ci: CItem, code: str, kind: str, category: str, category_name: str | None) -> None:
        item = ci.item
        self.ci = ci
        self.item: Item = item
        self.name = item.name
        self.max_points = item.max_points
        self.multi = len(ci.scales) > 1
        self.inputs = _inputs_plan(_input_names(ci.inputs_metrics))
        self.head = (f'{{"code":{_s(code)},"name":{_s(item.name)},"category":{_s(category)},'
                     f'"category_name":{_js(category_name)},"kind":{_s(kind)},"inputs":')
        self.thr = f',"max_points":{_jd(item.max_points)},"met":'
        # after met: threshold, then reason (dynamic), then source and unconfirmed
        self.reason_tail = (f',"threshold":{_s(ci.threshold)},"reason":',
                            f',"source":{_js(item.source)},"unconfirmed":{_jb(item.unconfirmed)}}}')


def _plan(rs: RuleSet, comp: Compiled) -> _Plan:
    plan = comp.fast
    if plan is None:
        plan = comp.fast = _Plan(rs, comp)
    assert isinstance(plan, _Plan)
    return plan


class _Env:
    """Per-enterprise caches: JSON of raw inputs, value displays of metrics."""

    __slots__ = ("ctx", "disp", "inp")

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx
        self.inp: dict[str, str] = {}
        self.disp: dict[str, str] = {}

    def display(self, m: Metric) -> str:
        s = self.disp.get(m.name)
        if s is None:
            s = self.disp[m.name] = fmt_value(m.value(self.ctx), m.unit)
        return s

    def inputs(self, plan: tuple[tuple[str, str], ...]) -> str:
        if not plan:
            return "{}"
        inp = self.inp
        parts: list[str] = []
        for name, key in plan:
            j = inp.get(name)
            if j is None:
                ctx = self.ctx
                v: Any
                if name.startswith("local_indicators."):
                    v = ctx.ind.local_indicators.get(name.split(".", 1)[1])
                elif name in _FACT_INPUTS:
                    v = getattr(ctx.facts, name)
                    if isinstance(v, date):
                        v = v.isoformat()
                else:
                    v = getattr(ctx.ind, name)
                    if isinstance(v, Enum):
                        v = str(v.value)
                j = inp[name] = _jv(v)
            parts.append(key)
            parts.append(j)
        parts.append("}")
        return "".join(parts)


def _gap(spec: GapSpec) -> str:
    return (f'{{"code":{_s(spec["code"])},"description":{_s(spec["description"])},'
            f'"metric":{_js(spec.get("metric"))},"unit":{_js(spec.get("unit"))},"current":{_js(spec.get("current"))},'
            f'"required":{_s(spec["required"])},"shortfall":{_jd(spec.get("shortfall"))},'
            f'"shortfall_display":{_js(spec.get("shortfall_display"))},"yuan_needed":{_jd(spec.get("yuan_needed"))}}}')


def _cond(env: _Env, cp: _Cond) -> tuple[str, bool | None]:
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
    return (f'{cp.head}{env.inputs(cp.inputs)},"value":{_jv(value)},"value_display":{_s(display)}{cp.mid}'
            f'{"true" if state is True else "false"}{cp.thr}{reason}{cp.tail}'), state


def _score(env: _Env, ip: _ItemPlan) -> tuple[str, Decimal, bool]:
    """(item JSON, points, 缺少数据)."""
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
    rt = ip.reason_tail
    return (f'{ip.head}{env.inputs(ip.inputs)},"value":{_jv(value)},"value_display":{_s(display)},'
            f'"band":{_js(band)},"points":"{points!s}"{ip.thr}{"true" if points > 0 else "false"}'
            f'{rt[0]}{_MISSING_J if missing else "null"}{rt[1]}'), points, missing


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


def explain(ruleset: RuleSet, facts: EnterpriseFacts, as_of: date) -> tuple[str, bool, Decimal | None]:
    """(JSON text of the reference result, eligible, score) of ``engine.evaluate(ruleset, facts, as_of)``."""
    comp = compile_ruleset(ruleset)
    plan = _plan(ruleset, comp)
    ctx = Ctx(facts, as_of)
    env = _Env(ctx)
    items: list[str] = []
    unmet: list[str] = []
    gaps: list[str] = []

    # 1. prerequisites
    prereqs: list[str] = []
    prereq_ok = True
    for cp in comp.prereqs:
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
        valid_to = max((t.valid_to for t in valid), default=None)
        levels = "null" if p.levels is None else "[" + ",".join(_s(x) for x in p.levels) + "]"
        prereqs.append(
            f'{{"code":{_s(p.code)},"name":{_s(p.name)},"tier":{_s(p.tier)},"levels":{levels},'
            f'"applicable":{_jb(applicable)},"met":{_jb(met)},'
            f'"title_valid_to":{"null" if valid_to is None else _s(valid_to.isoformat())},"reason":{_js(reason)}}}'
        )
        if not met:
            prereq_ok = False
            unmet.append(f"{p.code}: {p.name} — {reason}")
            name = TIER_NAMES[p.tier]
            gaps.append(_gap(dict(code=p.code, description=f"需在 {as_of} 持有有效的{name}称号 ({reason})",
                                  current=reason, required=f"有效的{name}称号")))

    # 2. hard conditions
    hard_ok = True
    for hc in plan.hard:
        text, state = _cond(env, hc)
        items.append(text)
        if state is not True:
            hard_ok = False
            unmet.append(f"{hc.code}: {hc.name} — {'要求 ' + (hc.text or '') if state is False else MISSING}")
            specs: list[GapSpec] = []
            hc.node.gaps(ctx, hc.code, specs)
            gaps.extend(_gap(g) for g in specs)

    # 3. score
    score: Decimal | None = None
    category_scores: dict[str, Decimal] = {}
    score_ok = False
    scored_missing: list[Item] = []
    if comp.items:
        for ip in plan.items:
            it = ip.item
            cat = it.category
            results = _local_features(env, comp, plan, it, cat) if it.local_features else [_score(env, ip)]
            _, head_points, head_missing = results[0]
            category_scores[cat] = category_scores.get(cat, ZERO) + (head_points or ZERO)
            if head_missing:
                scored_missing.append(it)
            items.extend(r for r, _, _ in results)
        for code in comp.category_max:
            category_scores.setdefault(code, ZERO)
        score = sum(category_scores.values(), ZERO)
        pass_score = ruleset.pass_score or ZERO
        cat_fail = [c for c, mn in comp.category_min.items() if category_scores[c] < mn]
        score_ok = score >= pass_score and not cat_fail

    # 4. direct routes
    route_met: str | None = None
    for rc in plan.routes:
        text, state = _cond(env, rc)
        items.append(text)
        if state is True and route_met is None:
            route_met = rc.code

    route: str | None
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
                gaps.append(_gap(dict(code="score", description=f"评价得分 {score}分 → {pass_score}分: 差{short}分",
                                      unit="points", current=f"{score}分", required=f"≥ {pass_score}分",
                                      shortfall=short, shortfall_display=f"{short}分")))
            for c, mn in comp.category_min.items():
                got = category_scores[c]
                if got < mn:
                    name = comp.category_names[c]
                    unmet.append(f"score.{c}: {name}类得分 {got}分 — 要求 ≥ {mn}分")
                    gaps.append(_gap(dict(
                        code=f"score.{c}", description=f"{name}类得分 {got}分 → {mn}分: 差{mn - got}分",
                        unit="points", current=f"{got}分", required=f"≥ {mn}分", shortfall=mn - got,
                        shortfall_display=f"{mn - got}分",
                    )))
            for sm in scored_missing:
                unmet.append(f"{sm.code}: {sm.name} — {MISSING}")
    else:
        part_ok = True
        route = None

    eligible = prereq_ok and hard_ok and part_ok
    if not comp.items and eligible:
        route = "checklist"

    cats = ",".join(f'{_s(k)}:"{v!s}"' for k, v in category_scores.items())
    text = (f'{plan.prefix}{_s(as_of.isoformat())},"eligible":{_jb(eligible)},"score":{_jd(score)},'
            f'"pass_score":{_jd(ruleset.pass_score)},"category_scores":{{{cats}}},"items":[{",".join(items)}],'
            f'"route":{_js(route)},"prerequisites":[{",".join(prereqs)}],'
            f'"unmet":[{",".join(_s(u) for u in unmet)}],"gaps":[{",".join(gaps)}]}}')
    return text, eligible, score


def evaluate_json(ruleset: RuleSet, facts: EnterpriseFacts, as_of: date) -> dict[str, Any]:
    """``engine.evaluate(ruleset, facts, as_of).model_dump(mode="json")`` via the fast path."""
    data: dict[str, Any] = json.loads(explain(ruleset, facts, as_of)[0])
    return data
