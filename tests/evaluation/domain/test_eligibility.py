"""The eligibility-only evaluation (``domain.eligibility``) agrees with ``engine.evaluate(...).eligible`` on every
YAML case under every shipped rule set and on the randomised facts of the fast-path tests, also when one
context (metric cache) is shared by several rule sets, as the policy simulation does."""

from __future__ import annotations

import random
from datetime import date
from pathlib import Path

import pytest

from services.evaluation.domain.eligibility import checker, eligible, eligible_in
from services.evaluation.domain.engine import evaluate
from services.evaluation.domain.facts import EnterpriseFacts
from services.evaluation.domain.loader import RuleCase
from services.evaluation.domain.rule_metrics import Ctx
from services.evaluation.domain.rules import RuleSet
from tests.evaluation.domain.test_fast_path import CASES, RULESETS, _random_facts


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


def _agree(facts: EnterpriseFacts, as_of: date) -> int:
    shared = Ctx(facts, as_of)
    yes = 0
    for rs in [*RULESETS.values(), *VARIANTS]:
        want = evaluate(rs, facts, as_of).eligible
        assert eligible(rs, facts, as_of) is want, rs.id
        assert eligible_in(rs, shared) is want, rs.id
        assert checker(rs)(shared) is want, rs.id
        yes += want
    return yes


@pytest.mark.parametrize("case", CASES, ids=[f"{Path(c.file).stem}:{c.name}" for c in CASES])
def test_eligibility_equals_reference_on_case(case: RuleCase) -> None:
    rs = RULESETS[case.ruleset]
    assert eligible(rs, case.facts, case.as_of) is evaluate(rs, case.facts, case.as_of).eligible
    _agree(case.facts, case.as_of)


def test_variants_present() -> None:
    assert len(VARIANTS) >= 6


def test_cases_cover_both_outcomes() -> None:
    outcomes = {evaluate(RULESETS[c.ruleset], c.facts, c.as_of).eligible for c in CASES}
    assert outcomes == {True, False}


@pytest.mark.parametrize("seed", range(8))
def test_eligibility_equals_reference_on_random_facts(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(60):
        facts = _random_facts(rng)
        as_of = rng.choice([date(2023, 6, 30), date(2025, 12, 31), date(2026, 5, 1)])
        _agree(facts, as_of)
