"""The fast path (``domain.fast.explain``) writes exactly the reference engine's JSON, character for character,
and so does the normalised form: ``decode(template, encode(result))`` (static part once per rule set, varying
part per enterprise), also after the template's round trip through JSON (as stored in the database).

Compared on every YAML case of every shipped rule set and on randomised facts (missing values, band edges,
titles, honours, awards, local indicators) evaluated under every shipped rule set at several dates."""

from __future__ import annotations

import json
import random
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from services.evaluation.domain import fast
from services.evaluation.domain.engine import FactNode, Node, compile_ruleset, evaluate
from services.evaluation.domain.facts import EnterpriseFacts, HeldTitle
from services.evaluation.domain.fast import decode, encode, evaluate_json, explain, template
from services.evaluation.domain.loader import DEFAULT_DIR, RuleCase, load_all, load_cases
from services.evaluation.domain.rule_metrics import REGISTRY, Ctx
from shared.indicators import IndicatorSet

RULESETS = {rs.id: rs for rs in load_all()}
CASES: list[RuleCase] = [c for f in sorted((DEFAULT_DIR / "cases").glob("*.yaml")) for c in load_cases(f)]


def _same(rs: Any, facts: EnterpriseFacts, as_of: date) -> None:
    reference = evaluate(rs, facts, as_of)
    want = reference.model_dump(mode="json")
    text, eligible, score = explain(rs, facts, as_of)
    assert json.loads(text) == want
    # character for character the reference's JSON (same keys, same order, same value texts)
    assert text == json.dumps(want, ensure_ascii=False, separators=(",", ":"))
    assert eligible is reference.eligible and score == reference.score and str(score) == str(reference.score)
    assert evaluate_json(rs, facts, as_of) == want
    # normalised: the varying part alone + the rule set's static template (round-tripped as stored)
    compact, eligible2, score2 = encode(rs, facts, as_of)
    _, tpl = template(rs)
    stored_tpl = json.loads(json.dumps(tpl, sort_keys=True))
    assert decode(stored_tpl, compact) == text
    assert decode(stored_tpl, json.dumps(json.loads(compact), sort_keys=True)) == text  # jsonb-safe form
    assert (eligible2, score2) == (eligible, score)
    assert len(compact) < len(text)


def test_cases_present() -> None:
    assert len(CASES) >= 160


@pytest.mark.parametrize("case", CASES, ids=[f"{Path(c.file).stem}:{c.name}" for c in CASES])
def test_fast_path_equals_reference_on_case(case: RuleCase) -> None:
    _same(RULESETS[case.ruleset], case.facts, case.as_of)
    # and under every other rule set, at the case's date (other items, routes and prerequisites)
    for rs in RULESETS.values():
        _same(rs, case.facts, case.as_of)


_MONEY = ["operating_revenue", "operating_revenue_prev1", "operating_revenue_prev2", "main_business_revenue",
          "main_business_revenue_prev1", "main_business_revenue_prev2", "rd_expense", "rd_expense_prev1",
          "total_assets", "total_liabilities", "equity_financing_2y", "equity_financing_3y", "tax_paid"]
_SIGNED = ["net_profit", "net_profit_prev1", "net_profit_prev2"]
_COUNTS = ["employees", "rd_staff", "ip_class1_high_value", "ip_class1_self_developed", "ip_class1", "ip_class2",
           "ip_class1_applied", "main_products_count", "standards_participated"]
_BOOLS = ["info_system_core_business", "quality_award_provincial", "quality_system_certified",
          "mgmt_system_certified", "intl_certification", "own_brand", "chain_key_role", "six_foundations",
          "time_honoured_brand", "serves_chain_leader", "major_accident_3y", "serious_dishonesty",
          "abnormal_operation"]


def _random_facts(rng: random.Random) -> EnterpriseFacts:
    ind: dict[str, Any] = {}
    base = rng.choice([0, 10_000_000, 15_000_000, 50_000_000, 100_000_000, 400_000_000, 1_000_000_000])
    for f in _MONEY:
        if rng.random() < 0.85:
            ind[f] = str(Decimal(int(base * rng.choice([0, 0.01, 0.03, 0.05, 0.5, 0.55, 0.7, 0.8, 1, 1.2]))
                                + rng.choice([0, 1, 50])).quantize(Decimal("0.01")))
    for f in _SIGNED:
        if rng.random() < 0.8:
            ind[f] = str(Decimal(rng.randint(-5_000_000, 30_000_000)))
    for f in _COUNTS:
        if rng.random() < 0.8:
            ind[f] = rng.choice([0, 1, 2, 3, 5, 10, 50, 300])
    for f in _BOOLS:
        if rng.random() < 0.7:
            ind[f] = rng.random() < 0.3
    for f, choices in {
        "niche_years": ["0", "2", "3", "5", "10", "15"], "market_share_pct": ["5", "10", "20", "30"],
        "market_rank_national": [1, 3, 5, 10], "market_rank_global": [1, 3, 5], "digital_level": [0, 1, 2, 3, 4],
        "rd_institution_level": ["none", "below_city", "city", "province", "national"],
        "strategic_emerging_category": [1, 3, 7], "maker_china_national_top": [50, 500],
        "maker_china_year": [2021, 2023, 2024], "zj_key_industry": ["415X", "other"],
        "cnc_rate_pct": ["40", "60", "80"], "bank_credit_rating": ["AAA", "A"],
    }.items():
        if rng.random() < 0.6:
            ind[f] = rng.choice(choices)
    if rng.random() < 0.4:
        ind["honours"] = [{"code": rng.choice(["high_tech_enterprise", "tech_sme", "ip_demo"]),
                           "valid_until": rng.choice([None, "2024-12-31", "2027-12-31"])}]
    if rng.random() < 0.3:
        ind["sci_awards"] = [{"level": rng.choice(["provincial", "national"]), "rank": rng.randint(1, 6),
                              "year": rng.choice([2020, 2023, 2025])}]
    if rng.random() < 0.5:
        ind["local_indicators"] = {k: rng.choice([Decimal("1"), Decimal("30"), True, False, "A"])
                                   for k in ("listing_stage", "x") if rng.random() < 0.6}
        if "listing_stage" in ind["local_indicators"]:
            ind["local_indicators"]["listing_stage"] = rng.choice(["listed", "filed", "tutoring", "none"])
    titles = []
    for tier in ("innovative", "srdi", "little_giant", "hidden_champion"):
        if rng.random() < 0.4:
            start = date(2020, 1, 1) + timedelta(days=rng.randint(0, 2000))
            titles.append(HeldTitle(tier=tier, level=rng.choice(["province", "national", "city"]),
                                    valid_from=start, valid_to=start + timedelta(days=3 * 365 - 1),
                                    revoked=rng.random() < 0.15))
    return EnterpriseFacts(
        indicators=IndicatorSet.model_validate(ind), titles=titles,
        founded_on=rng.choice([None, date(2010, 5, 1), date(2023, 3, 2)]),
        region_code=rng.choice(["330110", "330102", "330205", "320100", None]),
        industry_code=rng.choice([None, "C3911", "I6510"]), is_manufacturing=rng.choice([None, True, False]),
        reporting_year=rng.choice([None, 2023, 2024, 2025]), is_recheck=rng.random() < 0.2,
    )


@pytest.mark.parametrize("seed", range(8))
def test_fast_path_equals_reference_on_random_facts(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(60):
        facts = _random_facts(rng)
        as_of = rng.choice([date(2023, 6, 30), date(2025, 12, 31), date(2026, 5, 1)])
        for rs in RULESETS.values():
            _same(rs, facts, as_of)


# The fast path memoizes the outcome of a condition or item by the values of its inputs (and a fact
# condition's by what it reads): these check that premise — that a metric reads nothing but its declared
# inputs (and the decision date), and a fact condition nothing but what its ``reads`` returns.

_FACT_FIELDS = ("founded_on", "region_code", "industry_code", "is_manufacturing", "is_recheck")


def _with_inputs(facts: EnterpriseFacts, source: EnterpriseFacts, names: tuple[str, ...]) -> EnterpriseFacts:
    """``facts`` with the inputs ``names`` (indicator or fact fields) taken from ``source``."""
    ind = {n: getattr(source.indicators, n) for n in names if n not in _FACT_FIELDS}
    own = {n: getattr(source, n) for n in names if n in _FACT_FIELDS}
    return facts.model_copy(update={**own, "indicators": facts.indicators.model_copy(update=ind)})


@pytest.mark.parametrize("seed", range(4))
def test_metrics_read_only_their_declared_inputs(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(100):
        a, b = _random_facts(rng), _random_facts(rng)
        as_of = rng.choice([date(2023, 6, 30), date(2026, 5, 1)])
        for m in REGISTRY.values():
            assert {n for pair in m.money_pairs for n in pair} <= set(m.inputs)  # (read by the gaps)
            mixed = _with_inputs(b, a, m.inputs)
            va, vb = m.fn(Ctx(a, as_of)), m.fn(Ctx(mixed, as_of))
            assert (type(va), str(va)) == (type(vb), str(vb)), m.name


def _fact_nodes(node: Node) -> list[FactNode]:
    if isinstance(node, FactNode):
        return [node]
    return [f for k in getattr(node, "kids", []) for f in _fact_nodes(k)]


def test_fact_conditions_read_only_what_their_key_says() -> None:
    nodes: list[Node] = []
    for rs in RULESETS.values():
        comp = compile_ruleset(rs)
        nodes += [c.node for c in (*comp.hard, *comp.routes)] + [p.when for p in comp.prereqs if p.when]
        nodes += [o.node for ci in comp.items for o in ci.options]
    facts_nodes = [f for n in nodes for f in _fact_nodes(n)]
    assert len(facts_nodes) >= 4
    rng = random.Random(7)
    for _ in range(300):
        a, b = _random_facts(rng), _random_facts(rng)
        read = ("honours", "sci_awards", "maker_china_national_top", "maker_china_year")
        mixed = b.model_copy(update={
            "titles": a.titles, "reporting_year": a.reporting_year,
            "indicators": b.indicators.model_copy(update={n: getattr(a.indicators, n) for n in read}),
        })
        as_of = rng.choice([date(2023, 6, 30), date(2026, 5, 1)])
        ca, cb, cm = Ctx(a, as_of), Ctx(b, as_of), Ctx(mixed, as_of)
        for f in facts_nodes:
            assert f.reads(ca) == f.reads(cm)  # (so that such pairs are compared below)
            for other in (cb, cm):
                if f.reads(ca) == f.reads(other):
                    assert (f.eval(ca), f.current(ca)) == (f.eval(other), f.current(other)), f.text


def test_memo_is_bounded_and_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A condition or item whose inputs take ``_MEMO_SIZE`` distinct values is no longer memoized (amounts:
    they hardly repeat), the others keep theirs; the output is the reference's throughout."""
    monkeypatch.setattr(fast, "_MEMO_SIZE", 8)
    rng = random.Random(11)
    as_of = date(2025, 12, 31)
    for rs in RULESETS.values():
        rs = rs.model_copy()  # a new compiled rule set: a new plan and memo
        for _ in range(40):
            _same(rs, _random_facts(rng), as_of)
        memo = fast._plan_of(rs).memo(as_of)
        assert all(m is None or len(m) <= 8 for m in memo)
        if rs.items:
            assert any(m is None for m in memo)  # the amounts' ratios
            assert any(m for m in memo)  # flags and counts


def test_stored_indicators_parse_like_the_validated_model() -> None:
    """Re-evaluation and simulation read stored reports with ``stored_indicators`` (the amounts' bounds are not
    checked again): on every YAML case's indicators and on random ones, the same values, types, field order and
    fields set as ``IndicatorSet.model_validate_json``."""
    from shared.indicators import stored_indicators

    rng = random.Random(11)
    sets = [c.facts.indicators for c in CASES] + [_random_facts(rng).indicators for _ in range(500)]
    for ind in sets:
        text = ind.model_dump_json()
        got, want = stored_indicators(text), IndicatorSet.model_validate_json(text)
        assert got == want and repr(got) == repr(want), text
        assert got.model_fields_set == want.model_fields_set
        assert [type(v) for v in got.__dict__.values()] == [type(v) for v in want.__dict__.values()]
