"""Runs every YAML rule case in services/evaluation/rulesets/cases against the shipped rule sets."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from services.evaluation.domain.engine import evaluate
from services.evaluation.domain.loader import DEFAULT_DIR, RuleCase, load_all, load_cases

CASES_DIR = DEFAULT_DIR / "cases"
RULESETS = {rs.id: rs for rs in load_all()}


def _all_cases() -> list[RuleCase]:
    out: list[RuleCase] = []
    for f in sorted(CASES_DIR.glob("*.yaml")):
        out.extend(load_cases(f))
    return out


CASES = _all_cases()


def test_every_ruleset_has_at_least_five_cases() -> None:
    counts = {rid: 0 for rid in RULESETS}
    for c in CASES:
        assert c.ruleset in RULESETS, f"{c.file}: unknown rule set {c.ruleset}"
        counts[c.ruleset] += 1
    thin = {k: v for k, v in counts.items() if v < 5}
    assert not thin, f"rule sets with fewer than 5 cases: {thin}"


def test_every_direct_route_has_a_passing_case() -> None:
    routed = {(c.ruleset, c.expect.route) for c in CASES if c.expect.eligible}
    missing = [
        (rs.id, r.code) for rs in RULESETS.values() for r in rs.direct_routes if (rs.id, r.code) not in routed
    ]
    assert not missing, f"direct routes without a case: {missing}"


@pytest.mark.parametrize("case", CASES, ids=[f"{Path(c.file).stem}:{c.name}" for c in CASES])
def test_rule_case(case: RuleCase) -> None:
    rs = RULESETS[case.ruleset]
    res = evaluate(rs, case.facts, case.as_of)
    exp = case.expect
    ctx = f"\nunmet={res.unmet}\nroute={res.route} score={res.score} cats={res.category_scores}"
    assert res.eligible is exp.eligible, ctx
    if exp.score is not None:
        assert res.score == exp.score, ctx
    if "route" in exp.model_fields_set:
        assert res.route == exp.route, ctx
    if exp.unmet is not None:
        assert sorted(res.unmet_codes) == sorted(exp.unmet), ctx
    points = {i.code: i.points for i in res.items if i.kind in ("scored", "local_feature")}
    for code, want in exp.items.items():
        assert code in points, f"no scored item {code}"
        assert points[code] == want, f"{code}: {points[code]} != {want}{ctx}"
    bands = {i.code: i.band for i in res.items}
    for code, band in exp.bands.items():
        assert bands[code] == band
    for cat, want in exp.category_scores.items():
        assert res.category_scores[cat] == want, ctx
    gaps = {g.code: g.yuan_needed for g in res.gaps}
    for code, yuan in exp.gaps.items():
        assert gaps.get(code) == Decimal(yuan), f"gap {code}: {gaps.get(code)} != {yuan}{ctx}"
    if exp.eligible:
        assert not res.unmet
