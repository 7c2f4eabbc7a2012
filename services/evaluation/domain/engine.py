"""The rules engine: evaluate one enterprise's facts under one rule set at a decision date. Pure, no I/O.

One evaluator (``_walk``) walks the rule set's plan (``plan.compile_ruleset``: compiled once per rule-set
version and cached on it) and decides

    Eligibility = every applicable prerequisite title valid at ``as_of``
                ∧ every hard condition met
                ∧ (score ≥ pass_score with every category minimum  ∨  any direct route)   [if the set is scored]

and, from the same walk, gives what is asked:

- **eligibility only** (``eligible``, ``eligible_in``, ``checker``; the policy simulation): the walk stops as
  soon as the decision is known (a failed prerequisite or hard condition ends it; a direct route that holds
  makes the score irrelevant), and an item's points are kept in the context's cache under a digest of its
  definition, so rule sets evaluated on one shared context (a draft and the rule set in force) score a shared
  item once;
- **eligibility and score** (``decide``);
- **the full explanation** (``encode``: the compact form stored per evaluation; ``explain``: the explanation's
  JSON text as stored and served; ``evaluate``: its typed view, ``EvaluationResult``). The walk takes each part
  through the explanation writer (``_Writer``): the part is decided once, as in the other modes (a
  prerequisite's outcome, a condition node's state, ``score_item``'s points with the band or options that gave
  them, ``score_features``), and its text is written from that outcome (with the plan's static fragments, see
  ``explanation``); the walk combines the outcomes into the decision, and the writer adds the decision's
  texts (route, the score part's unmet lines and gaps) from what the walk computed.

Explained outcomes are memoised: the outcome of a condition or item whose inputs repeat across enterprises
(flags, counts, levels, missing values; the honours, awards and titles a fact condition reads), with its
written text, unmet line and gaps, is computed once per decision date and then looked up (``Plan.memo``), and
so are the score part's unmet lines and gaps. The inputs' JSON texts and the metrics' displays are computed
once per enterprise.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

from services.evaluation.domain.explanation import (
    MISSING,
    EvaluationResult,
    field_json,
    gap,
    jb,
    jd,
    js,
    jstr,
    jv,
    render,
)
from services.evaluation.domain.facts import EnterpriseFacts
from services.evaluation.domain.plan import (
    FACT_INPUTS,
    LOCAL_INPUT,
    CBand,
    CondPart,
    COption,
    CScale,
    FactNode,
    Features,
    ItemPart,
    Plan,
    PrereqPart,
    ValuesText,
    compile_ruleset,
)
from services.evaluation.domain.rule_metrics import ZERO, Ctx, Metric, Value, as_number, fmt_value
from services.evaluation.domain.rules import TIER_NAMES, RuleSet

__all__ = [
    "EvaluationResult",
    "checker",
    "compile_ruleset",
    "decide",
    "eligible",
    "eligible_in",
    "encode",
    "encode_with_gaps",
    "evaluate",
    "explain",
    "score_item",
    "template",
]

# ------------------------------------------------------------------------------------------------ scoring

# An item's points (capped at its maximum); what gave them — of an item scored on scales the best (scale, band)
# (band None: the value is outside every band; None: no scale has a value), of an option item the options met;
# the value scored; whether data is missing (缺少数据).
ItemScore = tuple[Decimal, Any, Value, bool]


def score_item(ctx: Ctx, ip: ItemPart) -> ItemScore:
    """The points of one item: the best band over its scales (each scale's band per its edge rule), or the
    options met (their maximum, or their sum), capped at the item's maximum."""
    if ip.scales:
        best_points: Decimal | None = None
        best: tuple[CScale, CBand | None] | None = None
        value: Value = None
        for sc in ip.scales:
            v = sc.metric.value(ctx)
            x = as_number(v)
            if x is None:
                continue
            b = sc.pick(x)
            p = ZERO if b is None else b.points
            if best_points is None or p > best_points:
                best_points, best, value = p, (sc, b), v
        if best_points is None:
            return min(ZERO, ip.max_points), None, None, True
        return best_points, best, value, False  # (a band's points never exceed the item's: ``rules.Item``)
    met: list[COption] = []
    all_missing = True
    for o in ip.options:
        r = o.node.eval(ctx)
        if r is True:
            met.append(o)
        if r is not None:
            all_missing = False
    if not met:
        return min(ZERO, ip.max_points), (), None, all_missing
    points = sum((o.points for o in met), ZERO) if ip.item.aggregate == "sum" else max(o.points for o in met)
    return min(points, ip.max_points), tuple(met), None, False


FeatureScore = tuple[Features | None, list[ItemScore], Decimal]


def score_features(ctx: Ctx, ip: ItemPart) -> FeatureScore:
    """A 特色化 item: the configuration of the enterprise's province for the reporting year (the latest one
    covering it), its items' scores and their total, capped at the item's maximum (0 without one)."""
    region = ctx.facts.region_code
    chosen: Features | None = None
    for f in (ip.features or {}).get(f"{region[:2]}0000" if region else "", []):
        if f.cfg.covers(ctx.ref_year) and (chosen is None or f.cfg.from_year > chosen.cfg.from_year):
            chosen = f
    if chosen is None:
        return None, [], ZERO
    scores = [score_item(ctx, sub) for sub in chosen.items]
    return chosen, scores, min(sum((s[0] for s in scores), ZERO), ip.max_points)


def _points(ctx: Ctx, ip: ItemPart) -> Decimal:
    """An item's points, kept in the context's cache (shared by rule sets evaluated on one context)."""
    cache = ctx.cache
    got = cache.get(ip.points_key)
    if got is None:
        got = cache[ip.points_key] = score_features(ctx, ip)[2] if ip.features is not None else score_item(ctx, ip)[0]
    assert isinstance(got, Decimal)
    return got


# ------------------------------------------------------------------------------------------------ the walk


def _walk(
    plan: Plan, ctx: Ctx, w: _Writer | None = None, eligibility_only: bool = False
) -> tuple[bool, Decimal | None]:
    """(eligible, score) of the facts in ``ctx`` under ``plan``; with a writer, every part's outcome is written
    as it is decided; ``eligibility_only`` stops as soon as the decision is known (the score is then ``None``
    unless the score decided)."""
    ok = True
    # 1. prerequisites (decision 6)
    for p in plan.prereqs:
        applicable, met, reason, valid_to = p.outcome(ctx)
        if w is not None:
            w.prerequisite(p, applicable, met, reason, valid_to)
        if not met:
            if eligibility_only:
                return False, None
            ok = False
    # 2. hard conditions (met only when True: 缺少数据 is unmet)
    for c in plan.hard:
        if (c.node.eval(ctx) if w is None else w.condition(c)) is not True:
            if eligibility_only:
                return False, None
            ok = False
    if not plan.items:  # a checklist
        if w is not None:
            w.finish(ok, None, {}, "checklist" if ok else None)
        return ok, None
    if eligibility_only:
        for c in plan.routes:  # 4. a direct route replaces the score condition
            if c.node.eval(ctx) is True:
                return True, None
    # 3. score ≥ pass score with every category minimum
    cats: dict[str, Decimal] = {}
    for ip in plan.items:
        points = _points(ctx, ip) if w is None else w.item(ip)
        cats[ip.category] = cats.get(ip.category, ZERO) + points
    for code in plan.category_max:
        cats.setdefault(code, ZERO)
    score = sum(cats.values(), ZERO)
    score_ok = score >= plan.pass_score and all(cats[c] >= mn for c, mn in plan.category_min.items())
    if eligibility_only:
        return score_ok, score
    # 4. direct routes (replace the score condition only)
    route: str | None = "score" if score_ok else None
    for c in plan.routes:
        if (c.node.eval(ctx) if w is None else w.condition(c)) is True and route is None:
            route = c.code
    if w is not None:
        w.finish(ok and route is not None, score, cats, route)
    return ok and route is not None, score


# ------------------------------------------------------------------------------------------- the writer


class _Inputs(dict[str, str]):
    """The JSON texts of an enterprise's inputs by name: the indicator fields of the plan read up front,
    facts and local indicators on first use."""

    __slots__ = ("ctx",)

    def __init__(self, ctx: Ctx, fields: tuple[str, ...]) -> None:
        super().__init__()
        self.ctx = ctx
        ind = ctx.ind
        for n in fields:
            self[n] = field_json(getattr(ind, n))

    def __missing__(self, name: str) -> str:
        ctx = self.ctx
        v: Any
        if name.startswith(LOCAL_INPUT):
            v = ctx.ind.local_indicators.get(name[len(LOCAL_INPUT):])
        elif name in FACT_INPUTS:
            v = getattr(ctx.facts, name)
            if isinstance(v, date):
                v = v.isoformat()
        else:
            v = getattr(ctx.ind, name)
        j = self[name] = field_json(v)
        return j


# Distinct input values of a condition or item at a decision date beyond which its outcome is no longer memoized.
MEMO_SIZE = 1024

CondOutcome = tuple[str, bool | None, str | None, tuple[str, ...]]  # compact item, state, unmet line, gaps
ItemOutcome = tuple[str, Decimal, bool]  # compact item (or its whole JSON text without a template), points, 缺少数据
ScoreUnmet = tuple[tuple[str, ...], tuple[str, ...]]  # the score part's unmet lines (JSON), gaps


class _Writer:
    """Writes the compact explanation (``explanation``) of one evaluation, part by part as the walk decides
    them: per enterprise the context, the JSON texts of its inputs, the displays of its metrics, the texts
    written so far, and the plan's outcome memo at the decision date."""

    __slots__ = ("compact", "ctx", "disp", "gaps", "inp", "items", "memo", "missing", "plan", "prereqs", "unmet")

    def __init__(self, ctx: Ctx, plan: Plan) -> None:
        self.ctx = ctx
        self.plan = plan
        self.inp = _Inputs(ctx, plan.fields)
        self.disp: dict[str, str] = {}
        self.memo = plan.memo(ctx.as_of)
        self.items: list[str] = []
        self.unmet: list[str] = []  # JSON texts
        self.gaps: list[str] = []
        self.prereqs: list[str] = []
        self.missing: list[ItemPart] = []  # scored items missing data
        self.compact = ""

    def display(self, m: Metric) -> str:
        s = self.disp.get(m.name)
        if s is None:
            s = self.disp[m.name] = fmt_value(m.value(self.ctx), m.unit)
        return s

    def inputs(self, keys: tuple[tuple[str, str], ...]) -> str:
        """The inputs object (full text)."""
        if not keys:
            return "{}"
        inp = self.inp
        return "".join([key + inp[name] for name, key in keys]) + "}"

    def values(self, plan: ValuesText) -> str:
        """The inputs' values as a JSON array (compact form; the names are in the template)."""
        text: str = plan[0] % plan[1](self.inp)
        return text

    def remember(self, slot: int, memo: dict[Any, Any], key: Any, outcome: Any) -> None:
        """Store a new outcome, or drop the slot once its key took ``MEMO_SIZE`` values (``Plan.memo``)."""
        if len(memo) < MEMO_SIZE:
            memo[key] = outcome
        else:
            self.memo[slot] = None

    # --- prerequisites

    def prerequisite(self, p: PrereqPart, applicable: bool, met: bool, reason: str | None,
                     valid_to: date | None) -> None:
        self.prereqs.append(f'[{jb(applicable)},{jb(met)},'
                            f'{"null" if valid_to is None else jstr(valid_to.isoformat())},{js(reason)}]')
        if not met:
            pre = p.pre
            self.unmet.append(jstr(f"{pre.code}: {pre.name} — {reason}"))
            name = TIER_NAMES[pre.tier]
            self.gaps.append(gap(dict(code=pre.code, current=reason, required=f"有效的{name}称号",
                                      description=f"需在 {self.ctx.as_of} 持有有效的{name}称号 ({reason})")))

    # --- hard conditions and direct routes

    def condition(self, cp: CondPart) -> bool | None:
        """The state of a hard condition or direct route, its text written (and, for an unmet hard condition,
        its unmet line and gaps), from the memo when the condition has a slot."""
        values = self.values(cp.values)
        memo = self.memo[cp.slot] if cp.slot >= 0 else None
        got: CondOutcome | None
        if memo is None:
            got = self._condition(cp, values)
        else:
            key = values if cp.fact is None else cp.fact.reads(self.ctx)
            got = memo.get(key)
            if got is None:
                got = self._condition(cp, values)
                self.remember(cp.slot, memo, key, got)
        text, state, unmet, gaps = got
        self.items.append(text)
        if unmet is not None:
            self.unmet.append(unmet)
            self.gaps.extend(gaps)
        return state

    def _condition(self, cp: CondPart, values: str) -> CondOutcome:
        ctx = self.ctx
        node = cp.node
        state = node.eval(ctx)
        value: Value = None
        single = cp.single
        if single is not None:
            value = single.metric.value(ctx)
            display = self.display(single.metric)
        elif cp.uleaves:
            display = "; ".join(label + self.display(leaf.metric) for leaf, label in cp.uleaves)
        else:
            display = node.current(ctx) if isinstance(node, FactNode) else ""
        reason = "null" if state is True else (jstr(MISSING) if state is None else '"未达到要求"')
        text = (f'[{cp.idx},{values},{jv(value)},{jstr(display)},null,null,'
                f'{"true" if state is True else "false"},{reason}]')
        if state is True or not cp.hard:
            return text, state, None, ()
        specs: list[dict[str, Any]] = []
        node.gaps(ctx, cp.code, specs)
        return text, state, cp.unmet[state is None], tuple(gap(g) for g in specs)

    # --- scored items

    def item(self, ip: ItemPart) -> Decimal:
        """The points of a scored item, its text written, from the memo when the item has a slot."""
        if ip.features is not None:
            return self._features(ip)
        memo = self.memo[ip.slot] if ip.slot >= 0 else None
        if memo is None:
            text, points, missing = self._item(ip, None)
        else:
            values = self.values(ip.values)
            got: ItemOutcome | None = memo.get(values)
            if got is None:
                got = self._item(ip, values)
                self.remember(ip.slot, memo, values, got)
            text, points, missing = got
        self.items.append(text)
        if missing:
            self.missing.append(ip)
        return points

    def _item(self, ip: ItemPart, values: str | None) -> ItemOutcome:
        score = score_item(self.ctx, ip)
        return self._item_text(ip, score, values), score[0], score[3]

    def _item_text(self, ip: ItemPart, score: ItemScore, values: str | None) -> str:
        points, best, value, missing = score
        texts = ip.scale
        if texts is not None:  # one scale: its band's text is prepared
            if values is None:
                values = self.values(ip.values)
            display = jstr(self.display(ip.scales[0].metric))
            if best is None:
                return f"{texts.open}{values},null,{display}{texts.missing}"
            band = best[1]
            tail = texts.outside if band is None else texts.bands[id(band)]
            return f"{texts.open}{values},{jv(value)},{display}{tail}"
        band_text: str | None
        if ip.scales:
            multi = ip.multi
            display = "; ".join([f"{sc.metric.label}: {self.display(sc.metric)}" if multi else self.display(sc.metric)
                                 for sc in ip.scales])
            band_text = None
            if best is not None:
                scale, band = best
                band_text = "不属于以上档位" if band is None else band.display
                if multi:
                    band_text = f"{scale.metric.label} {band_text}"
        else:
            band_text = display = "、".join(o.label for o in best) if best else "不属于以上"
        met = "true" if points > 0 else "false"
        reason = jstr(MISSING) if missing else "null"
        if ip.idx >= 0:
            if values is None:
                values = self.values(ip.values)
            return f'[{ip.idx},{values},{jv(value)},{jstr(display)},{js(band_text)},"{points!s}",{met},{reason}]'
        rt = ip.reason_tail
        return (f'{ip.head}{self.inputs(ip.inputs)},"value":{jv(value)},"value_display":{jstr(display)},'
                f'"band":{js(band_text)},"points":"{points!s}"{ip.thr}{met}{rt[0]}{reason}{rt[1]}')

    def _features(self, ip: ItemPart) -> Decimal:
        """A 特色化 item: its head and its configuration's items, each written whole (their shape depends on
        the province and year)."""
        chosen, scores, total = score_features(self.ctx, ip)
        item = ip.item
        if chosen is None:
            missing = not self.ctx.facts.region_code
            head = self._plain(ip, "本省未配置特色化指标", None, ZERO,
                               MISSING if missing else "本省该年度未配置特色化指标", item.source, item.unconfirmed)
            subs: list[str] = []
        else:
            missing = all(s[3] for s in scores)
            cfg = chosen.cfg
            shown = "; ".join(f"{sub.name} {s[0]}分" for sub, s in zip(chosen.items, scores, strict=True))
            head = self._plain(ip, shown, f"{cfg.province} {cfg.from_year}年起特色化指标", total,
                               MISSING if missing else None, cfg.source or item.source,
                               item.unconfirmed or cfg.unconfirmed)
            subs = [self._item_text(sub, s, None) for sub, s in zip(chosen.items, scores, strict=True)]
        self.items.append(jstr(head))
        self.items.extend(jstr(s) for s in subs)
        if missing:
            self.missing.append(ip)
        return total

    def _plain(self, ip: ItemPart, display: str, band: str | None, points: Decimal, reason: str | None,
               source: str | None, unconfirmed: bool) -> str:
        """The whole JSON text of a 特色化 item's head (no inputs, value or threshold of its own)."""
        return (f'{ip.head}{{}},"value":null,"value_display":{jstr(display)},"band":{js(band)},'
                f'"points":{jd(points)},"max_points":{jd(ip.max_points)},"met":{jb(points > 0)},"threshold":null,'
                f'"reason":{js(reason)},"source":{js(source)},"unconfirmed":{jb(unconfirmed)}}}')

    # --- the decision

    def finish(self, eligible: bool, score: Decimal | None, cats: dict[str, Decimal], route: str | None) -> None:
        """The compact form, with the score part's unmet lines and gaps when neither the score nor a direct
        route is met."""
        cats_text = ",".join([f'[{jstr(k)},"{v!s}"]' for k, v in cats.items()])
        if score is not None and route is None:
            unmet, gaps = self._score_unmet(cats_text, score, cats)
            self.unmet.extend(unmet)
            self.gaps.extend(gaps)
        self.compact = (f'[{jstr(self.ctx.as_of.isoformat())},{jb(eligible)},{jd(score)},[{cats_text}],'
                        f'[{",".join(self.items)}],{js(route)},[{",".join(self.prereqs)}],[{",".join(self.unmet)}],'
                        f'[{",".join(self.gaps)}]]')

    def _score_unmet(self, cats_text: str, score: Decimal, cats: dict[str, Decimal]) -> ScoreUnmet:
        """From the memo: a function of the category scores (their exact texts; the score is their sum) and
        of the items missing data."""
        slot = self.plan.slots
        memo = self.memo[slot]
        if memo is None:
            return self._score_unmet_outcome(score, cats)
        key = (cats_text, tuple([ip.idx for ip in self.missing]))
        got: ScoreUnmet | None = memo.get(key)
        if got is None:
            got = self._score_unmet_outcome(score, cats)
            self.remember(slot, memo, key, got)
        return got

    def _score_unmet_outcome(self, score: Decimal, cats: dict[str, Decimal]) -> ScoreUnmet:
        plan = self.plan
        pass_score = plan.pass_score
        unmet: list[str] = []
        gaps: list[str] = []
        if score < pass_score:
            unmet.append(jstr(f"score: 评价得分 {score}分 — 要求 ≥ {pass_score}分"
                              + (" (或满足任一直通条件)" if plan.routes else "")))
            short = pass_score - score
            gaps.append(gap(dict(code="score", description=f"评价得分 {score}分 → {pass_score}分: 差{short}分",
                                 unit="points", current=f"{score}分", required=f"≥ {pass_score}分",
                                 shortfall=short, shortfall_display=f"{short}分")))
        for c, mn in plan.category_min.items():
            got = cats[c]
            if got < mn:
                name = plan.category_names[c]
                unmet.append(jstr(f"score.{c}: {name}类得分 {got}分 — 要求 ≥ {mn}分"))
                gaps.append(gap(dict(
                    code=f"score.{c}", description=f"{name}类得分 {got}分 → {mn}分: 差{mn - got}分",
                    unit="points", current=f"{got}分", required=f"≥ {mn}分", shortfall=mn - got,
                    shortfall_display=f"{mn - got}分",
                )))
        for ip in self.missing:
            unmet.append(jstr(f"{ip.item.code}: {ip.item.name} — {MISSING}"))
        return tuple(unmet), tuple(gaps)


# --------------------------------------------------------------------------------------------- public API

_LAST: tuple[RuleSet, Plan] | None = None  # the plan of the rule set evaluated last (a job evaluates one)


def _plan_of(rs: RuleSet) -> Plan:
    """The plan of ``rs``, without ``compile_ruleset``'s cache check when ``rs`` is the last rule set seen."""
    global _LAST
    last = _LAST
    if last is not None and last[0] is rs:
        return last[1]
    plan = compile_ruleset(rs)
    _LAST = (rs, plan)
    return plan


def checker(ruleset: RuleSet) -> Callable[[Ctx], bool]:
    """``ctx → eligible``, with the rule set's plan looked up once (for many evaluations under one rule set).
    A ``Ctx`` (facts + decision date + metric cache) may be shared by several rule sets evaluated on the same
    facts at the same date."""
    plan = compile_ruleset(ruleset)

    def check(ctx: Ctx) -> bool:
        return _walk(plan, ctx, None, True)[0]

    return check


def eligible_in(ruleset: RuleSet, ctx: Ctx) -> bool:
    """Whether the facts of ``ctx`` are eligible under ``ruleset`` at its date (eligibility only)."""
    return _walk(_plan_of(ruleset), ctx, None, True)[0]


def eligible(ruleset: RuleSet, facts: EnterpriseFacts, as_of: date) -> bool:
    """Eligibility only: nothing of the explanation is built, and the walk stops once the decision is known."""
    return eligible_in(ruleset, Ctx(facts, as_of))


def decide(ruleset: RuleSet, facts: EnterpriseFacts, as_of: date) -> tuple[bool, Decimal | None]:
    """(eligible, score) without the explanation (the score is ``None`` for a checklist)."""
    return _walk(_plan_of(ruleset), Ctx(facts, as_of))


def encode(ruleset: RuleSet, facts: EnterpriseFacts, as_of: date) -> tuple[str, bool, Decimal | None]:
    """(the compact JSON text of the explanation's varying part, eligible, score): what an evaluation stores
    beside its rule set's template (``template``); ``explanation.decode`` rebuilds the full text."""
    compact, ok, score, _, _ = encode_with_gaps(ruleset, facts, as_of)
    return compact, ok, score


def encode_with_gaps(
    ruleset: RuleSet, facts: EnterpriseFacts, as_of: date
) -> tuple[str, bool, Decimal | None, int, list[str]]:
    """``encode``, with what the same walk wrote into the compact form's last two parts: the number of unmet
    conditions and each gap's compact text (``explanation.gap``), so a summary of them (the ``evaluation.completed``
    event) needs no second read of the explanation."""
    plan = _plan_of(ruleset)
    w = _Writer(Ctx(facts, as_of), plan)
    ok, score = _walk(plan, w.ctx, w)
    return w.compact, ok, score, len(w.unmet), w.gaps


def template(ruleset: RuleSet) -> tuple[str, dict[str, Any]]:
    """(id, static part) of the explanations under ``ruleset``: every text that does not depend on the
    enterprise (JSON-serialisable; the id is a SHA-256 of its content, so a change of the static texts makes
    a new template and stored compact forms keep decoding with the one they were written with)."""
    plan = compile_ruleset(ruleset)
    return plan.template_id, plan.template


def explain(ruleset: RuleSet, facts: EnterpriseFacts, as_of: date) -> tuple[str, bool, Decimal | None]:
    """(the explanation's JSON text, eligible, score)."""
    plan = _plan_of(ruleset)
    compact, ok, score = encode(ruleset, facts, as_of)
    return render(plan.template, json.loads(compact), plan.template_id), ok, score


def evaluate(ruleset: RuleSet, facts: EnterpriseFacts, as_of: date) -> EvaluationResult:
    """The evaluation explained, typed: every item with its inputs, value, band, points and threshold, the
    prerequisites, the unmet conditions and the gaps."""
    return EvaluationResult.model_validate_json(explain(ruleset, facts, as_of)[0])
