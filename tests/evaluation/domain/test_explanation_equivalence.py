"""The rules engine reproduces the frozen corpus (``explanation_corpus``) byte for byte: for every shipped rule
set, on every YAML case and on 300 seeded random fact sets, the explanation's JSON text as stored and served,
the eligibility and the score; the rule set's explanation template (so stored templates and their ids stay
valid) and the normalised form (template + compact values) rebuilding the same text."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from services.evaluation.domain.engine import decide, eligible, encode, evaluate, explain, template
from services.evaluation.domain.explanation import decode
from services.evaluation.domain.facts import EnterpriseFacts
from services.evaluation.domain.loader import load_all
from tests.evaluation.domain.explanation_corpus import facts_of, load

DATA = load()
FACTS = facts_of(DATA)
RULESETS = {rs.id: rs for rs in load_all()}


def test_corpus_covers_every_shipped_ruleset() -> None:
    assert set(DATA["rulesets"]) == set(RULESETS)
    per_ruleset = {rid: 0 for rid in RULESETS}
    for rid, *_ in DATA["evaluations"]:
        per_ruleset[rid] += 1
    assert min(per_ruleset.values()) >= 400
    outcomes = {(e[3], e[4] is None) for e in DATA["evaluations"]}
    assert outcomes == {(True, True), (True, False), (False, True), (False, False)}


@pytest.mark.parametrize("ruleset_id", sorted(RULESETS))
def test_engine_reproduces_the_frozen_corpus(ruleset_id: str) -> None:
    rs = RULESETS[ruleset_id]
    frozen = DATA["rulesets"][ruleset_id]
    assert rs.version == frozen["version"]
    tid, tpl = template(rs)
    assert (tid, tpl) == (frozen["template_id"], frozen["template"])
    stored_tpl: dict[str, Any] = json.loads(json.dumps(frozen["template"], sort_keys=True))  # as jsonb returns it
    checked = 0
    for rid, i, as_of_text, want_eligible, want_score, want_text in DATA["evaluations"]:
        if rid != ruleset_id:
            continue
        facts: EnterpriseFacts = FACTS[i]
        as_of = date.fromisoformat(as_of_text)
        text, ok, score = explain(rs, facts, as_of)
        assert text == want_text, (ruleset_id, i, as_of_text)
        assert ok is want_eligible and score == (None if want_score is None else Decimal(want_score))
        assert str(score) == str(want_score) if score is not None else want_score is None
        # the stored form: the compact values (as jsonb returns them) + the stored template
        compact, ok2, score2 = encode(rs, facts, as_of)
        assert (ok2, score2) == (ok, score)
        assert decode(stored_tpl, json.dumps(json.loads(compact), sort_keys=True), tid) == want_text
        # the other modes of the same walk
        assert eligible(rs, facts, as_of) is want_eligible
        assert decide(rs, facts, as_of) == (ok, score)
        # the typed view writes the same text
        dumped = evaluate(rs, facts, as_of).model_dump(mode="json")
        assert json.dumps(dumped, ensure_ascii=False, separators=(",", ":")) == want_text
        checked += 1
    assert checked >= 400
