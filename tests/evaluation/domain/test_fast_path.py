"""The fast path (``domain.fast.explain``) writes exactly the reference engine's JSON, character for character,
and so does the normalised form: ``decode(template, encode(result))`` (static part once per rule set, varying
part per enterprise), also after the template's round trip through JSON (as stored in the database).

Compared on every YAML case of every shipped rule set and on randomised facts (missing values, band edges,
titles, honours, awards, local indicators) evaluated under every shipped rule set at several dates."""

from __future__ import annotations

import json
import random
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from services.evaluation.domain import fast
from services.evaluation.domain.engine import FactNode, Node, compile_ruleset, evaluate
from services.evaluation.domain.facts import EnterpriseFacts
from services.evaluation.domain.fast import decode, encode, evaluate_json, explain, template
from services.evaluation.domain.loader import DEFAULT_DIR, RuleCase, load_all, load_cases
from services.evaluation.domain.rule_metrics import REGISTRY, Ctx
from shared.indicators import IndicatorSet
from tests.evaluation.domain.random_facts import random_facts as _random_facts

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
