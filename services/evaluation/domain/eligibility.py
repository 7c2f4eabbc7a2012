"""Eligibility only: ``engine.evaluate(ruleset, facts, as_of).eligible`` without the explanation.

For bulk questions that need nothing but the yes/no (policy simulation): no item results, displays, inputs,
gaps or unmet texts are built, and the parts of the decision that cannot change it any more are skipped
(a failed prerequisite or hard condition ends it; a direct route that holds makes the score irrelevant).

It runs on the same compiled rule set as the reference (``engine.compile_ruleset``: the same condition
nodes, bands and their edge rule, options, local-feature configurations), so the two cannot drift apart in
the rules; ``tests/evaluation/domain/test_eligibility.py`` compares it with ``engine.evaluate(...).eligible``
on every YAML case under every shipped rule set and on randomised facts.

A ``Ctx`` (facts + decision date + the metric cache) may be shared by several rule sets evaluated on the
same facts at the same date (metrics depend on nothing else): ``eligible_in(ruleset, ctx)``, or
``checker(ruleset)(ctx)`` for many evaluations under one rule set (the compiled form looked up once). The
points of a scored item are kept in the context's cache (under a key that is no metric name, see
``_points_key``): rule sets sharing an item score it once per context.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import date
from decimal import Decimal

from services.evaluation.domain.engine import CItem, Compiled, _num, compile_ruleset
from services.evaluation.domain.facts import EnterpriseFacts
from services.evaluation.domain.rule_metrics import ZERO, Ctx
from services.evaluation.domain.rules import Item, RuleSet


def _item_points(ctx: Ctx, ci: CItem) -> Decimal:
    """The points ``engine._score_item`` gives (capped at the item's maximum)."""
    item = ci.item
    points = ZERO
    if ci.scales:
        best: Decimal | None = None
        for sc in ci.scales:
            x = _num(sc.metric.value(ctx))
            if x is None:
                continue
            b = sc.pick(x)
            p = b.points if b else ZERO
            if best is None or p > best:
                best = p
        if best is not None:
            points = best
    else:
        met = [o.points for o in ci.options if o.node.eval(ctx) is True]
        if met:
            points = sum(met, ZERO) if item.aggregate == "sum" else max(met)
    return min(points, item.max_points)


def _local_points(ctx: Ctx, comp: Compiled, item: Item) -> Decimal:
    """The head points of ``engine._local_features``."""
    region = ctx.facts.region_code
    province = f"{region[:2]}0000" if region else None
    chosen = None
    for f in comp.features.get(province or "", []):
        if f.cfg.covers(ctx.ref_year) and (chosen is None or f.cfg.from_year > chosen.cfg.from_year):
            chosen = f
    if chosen is None:
        return ZERO
    return min(sum((_item_points(ctx, ci) for ci in chosen.items), ZERO), item.max_points)


def _points_key(ruleset: RuleSet, item: Item) -> str:
    """The key of an item's points in the context's cache: a digest of everything they depend on (the item's
    definition, the band-edge rule and, for a local-feature item, the rule set's feature configurations), so
    rule sets sharing an item (a draft that changes another parameter) score it once per enterprise."""
    parts = [ruleset.band_edge, item.model_dump_json()]
    if item.local_features:
        parts.extend(f.model_dump_json() for f in ruleset.local_features)
    return "#points:" + hashlib.sha256("\n".join(parts).encode()).hexdigest()


def checker(ruleset: RuleSet) -> Callable[[Ctx], bool]:
    """``ctx → engine.evaluate(ruleset, ctx.facts, ctx.as_of).eligible``, with the compiled rule set and its
    parameters looked up once (for many evaluations under one rule set)."""
    comp = compile_ruleset(ruleset)
    prereqs = tuple((cp.when, cp.pre.tier, cp.levels) for cp in comp.prereqs)
    hard = tuple(cc.node for cc in comp.hard)
    routes = tuple(cc.node for cc in comp.routes)
    items = tuple((ci, ci.item, ci.item.category, bool(ci.item.local_features), _points_key(ruleset, ci.item))
                  for ci in comp.items)
    pass_score = ruleset.pass_score or ZERO
    category_min = tuple(comp.category_min.items())

    def check(ctx: Ctx) -> bool:
        as_of = ctx.as_of
        # 1. prerequisites (decision 6)
        for when, tier, levels in prereqs:
            if when is not None and when.eval(ctx) is False:
                continue  # not applicable
            if not any(t.tier == tier and (levels is None or t.level in levels) and t.valid_at(as_of)
                       for t in ctx.facts.titles):
                return False
        # 2. hard conditions (met only when True: 缺少数据 is unmet)
        for node in hard:
            if node.eval(ctx) is not True:
                return False
        if not items:
            return True
        # 4. a direct route replaces the score condition
        for node in routes:
            if node.eval(ctx) is True:
                return True
        # 3. score ≥ pass score with every category minimum
        category_scores: dict[str, Decimal] = {}
        cache = ctx.cache
        for ci, item, category, local, key in items:
            pts = cache.get(key)
            if pts is None:
                pts = cache[key] = _local_points(ctx, comp, item) if local else _item_points(ctx, ci)
            assert isinstance(pts, Decimal)
            category_scores[category] = category_scores.get(category, ZERO) + pts
        if sum(category_scores.values(), ZERO) < pass_score:
            return False
        return all(category_scores.get(c, ZERO) >= mn for c, mn in category_min)

    return check


def eligible_in(ruleset: RuleSet, ctx: Ctx) -> bool:
    """``engine.evaluate(ruleset, ctx.facts, ctx.as_of).eligible``."""
    return checker(ruleset)(ctx)


def eligible(ruleset: RuleSet, facts: EnterpriseFacts, as_of: date) -> bool:
    """``engine.evaluate(ruleset, facts, as_of).eligible``, without building the explanation."""
    return eligible_in(ruleset, Ctx(facts, as_of))
