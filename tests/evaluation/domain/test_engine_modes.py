"""The one evaluator's modes agree with each other: eligibility only (alone, on a context shared by several rule
sets, through a checker), eligibility and score, the compact stored form (decoded with the template as stored)
and the explanation's JSON text, and its typed view (``evaluate``) writing that same text — on every YAML case
under every shipped rule set (and variants of them), and on randomised facts (missing values, band edges,
titles, honours, awards, local indicators) at several dates. The frozen corpus
(``test_explanation_equivalence``) holds the texts themselves.

The memo of explained outcomes rests on two premises, checked here too: a metric reads nothing but its declared
inputs (and the decision date), and a fact condition nothing but what its ``reads`` returns."""

from __future__ import annotations

import json
import random
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from services.evaluation.domain import engine
from services.evaluation.domain.engine import (
    checker,
    compile_ruleset,
    decide,
    eligible,
    eligible_in,
    encode,
    evaluate,
    explain,
    template,
)
from services.evaluation.domain.explanation import decode
from services.evaluation.domain.facts import EnterpriseFacts
from services.evaluation.domain.loader import DEFAULT_DIR, RuleCase, load_all, load_cases
from services.evaluation.domain.plan import FactNode, Node
from services.evaluation.domain.rule_metrics import REGISTRY, Ctx
from services.evaluation.domain.rules import RuleSet
from shared.indicators import IndicatorSet
from tests.evaluation.domain.random_facts import random_facts

RULESETS = {rs.id: rs for rs in load_all()}
CASES: list[RuleCase] = [c for f in sorted((DEFAULT_DIR / "cases").glob("*.yaml")) for c in load_cases(f)]
DATES = [date(2023, 6, 30), date(2025, 12, 31), date(2026, 5, 1)]


def _variants() -> list[RuleSet]:
    """Rule sets whose items differ from a shipped one only slightly (a band's points, the band-edge rule):
    evaluated on the context shared with the originals, their items must not take the originals' points."""
    out = []
    for rs in RULESETS.values():
        scaled = [i for i in rs.items if i.scales]
        if not scaled:
            continue
        doc = rs.model_dump(mode="json")
        item = next(i for i in doc["items"] if i["code"] == scaled[0].code)
        item["scales"][0]["bands"][-1]["points"] = "0"
        out.append(RuleSet.model_validate(doc))
        out.append(rs.model_copy(update={"band_edge": "strict" if rs.band_edge == "favourable" else "favourable"}))
    return out


VARIANTS = _variants()


def _same(rs: RuleSet, facts: EnterpriseFacts, as_of: date, shared: Ctx | None = None) -> bool:
    """Every mode of ``rs`` on ``facts`` agrees; returns the eligibility."""
    text, ok, score = explain(rs, facts, as_of)
    # the typed view writes the very text
    result = evaluate(rs, facts, as_of)
    assert json.dumps(result.model_dump(mode="json"), ensure_ascii=False, separators=(",", ":")) == text
    assert result.eligible is ok and result.score == score and str(result.score) == str(score)
    # normalised: the varying part alone + the rule set's static template (round-tripped as stored)
    compact, ok2, score2 = encode(rs, facts, as_of)
    assert (ok2, score2) == (ok, score)
    _, tpl = template(rs)
    stored_tpl = json.loads(json.dumps(tpl, sort_keys=True))
    assert decode(stored_tpl, compact) == text
    assert decode(stored_tpl, json.dumps(json.loads(compact), sort_keys=True)) == text  # jsonb-safe form
    assert len(compact) < len(text)
    # without the explanation
    assert decide(rs, facts, as_of) == (ok, score)
    assert eligible(rs, facts, as_of) is ok
    if shared is not None:
        assert eligible_in(rs, shared) is ok, rs.id
        assert checker(rs)(shared) is ok, rs.id
    return ok


def _all_agree(facts: EnterpriseFacts, as_of: date) -> None:
    shared = Ctx(facts, as_of)  # one context (metric and points cache) for every rule set, as the simulation
    for rs in [*RULESETS.values(), *VARIANTS]:
        _same(rs, facts, as_of, shared)


def test_cases_present() -> None:
    assert len(CASES) >= 160
    assert len(VARIANTS) >= 6


def test_cases_cover_both_outcomes() -> None:
    assert {_same(RULESETS[c.ruleset], c.facts, c.as_of) for c in CASES} == {True, False}


@pytest.mark.parametrize("case", CASES, ids=[f"{Path(c.file).stem}:{c.name}" for c in CASES])
def test_modes_agree_on_case(case: RuleCase) -> None:
    # under its rule set and every other one at the case's date (other items, routes and prerequisites)
    _all_agree(case.facts, case.as_of)


@pytest.mark.parametrize("seed", range(8))
def test_modes_agree_on_random_facts(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(60):
        _all_agree(random_facts(rng), rng.choice(DATES))


def test_eligibility_only_stops_at_the_decision() -> None:
    """A failed hard condition decides: the score is not computed (no item's points in the context)."""
    rs = RULESETS["MIIT-2022-63-innovative"]
    facts = EnterpriseFacts(indicators=IndicatorSet.model_validate({"serious_dishonesty": True}), region_code="330110")
    ctx = Ctx(facts, date(2025, 6, 30))
    assert eligible_in(rs, ctx) is False
    assert not [k for k in ctx.cache if k.startswith("#points:")]
    ok, score = decide(rs, facts, date(2025, 6, 30))
    assert ok is False and score is not None  # (the score mode goes on)


# The explanation mode memoizes the outcome of a condition or item by the values of its inputs (and a fact
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
        a, b = random_facts(rng), random_facts(rng)
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
        plan = compile_ruleset(rs)
        nodes += [c.node for c in (*plan.hard, *plan.routes)] + [p.when for p in plan.prereqs if p.when]
        nodes += [o.node for ip in plan.items for o in ip.options]
    facts_nodes = [f for n in nodes for f in _fact_nodes(n)]
    assert len(facts_nodes) >= 4
    rng = random.Random(7)
    for _ in range(300):
        a, b = random_facts(rng), random_facts(rng)
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
    """A condition or item whose inputs take ``MEMO_SIZE`` distinct values is no longer memoized (amounts:
    they hardly repeat), the others keep theirs; every mode agrees throughout."""
    monkeypatch.setattr(engine, "MEMO_SIZE", 8)
    rng = random.Random(11)
    as_of = date(2025, 12, 31)
    for rs in RULESETS.values():
        rs = rs.model_copy()  # a new compiled rule set: a new plan and memo
        for _ in range(40):
            _same(rs, random_facts(rng), as_of)
        memo = compile_ruleset(rs).memo(as_of)
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
    sets: list[Any] = [c.facts.indicators for c in CASES] + [random_facts(rng).indicators for _ in range(500)]
    for ind in sets:
        text = ind.model_dump_json()
        got, want = stored_indicators(text), IndicatorSet.model_validate_json(text)
        assert got == want and repr(got) == repr(want), text
        assert got.model_fields_set == want.model_fields_set
        assert [type(v) for v in got.__dict__.values()] == [type(v) for v in want.__dict__.values()]
