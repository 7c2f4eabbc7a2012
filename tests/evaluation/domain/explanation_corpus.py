"""The frozen corpus of explanations: what the rules engine wrote for every shipped rule set on every YAML case
and on seeded random facts, kept to prove that a change of the engine changes no stored or served byte.

    .venv/bin/python -m tests.evaluation.domain.explanation_corpus     # (re)write corpus.json.xz

The file holds the facts (as JSON; each checked to validate back to exactly the facts evaluated), every shipped
rule set's explanation template (the static part stored once per rule-set version, with its id) and, per
(rule set, facts, decision date), the explanation's JSON text as evaluation stores and serves it, the
eligibility and the score. ``test_explanation_equivalence`` compares the engine with it.

Generated on 2026-12-05 with the engine as it was before its three evaluators became one (the reference
``engine.evaluate``'s JSON, checked equal to the fast path's ``explain`` and to the eligibility-only
checker's decision). Regenerate (with the engine's modes checked against each other) only for a deliberate
change of the rule sets or of the explanation texts, and say so in the commit.
"""

from __future__ import annotations

import json
import lzma
import random
from datetime import date
from pathlib import Path
from typing import Any

from services.evaluation.domain.facts import EnterpriseFacts
from services.evaluation.domain.loader import DEFAULT_DIR, load_all, load_cases
from services.evaluation.domain.rules import RuleSet
from tests.evaluation.domain.random_facts import random_facts

CORPUS = Path(__file__).with_name("corpus.json.xz")
FORMAT = 1
RANDOM_SEED = 20261205
RANDOM_FACTS = 300
DATES = (date(2023, 6, 30), date(2025, 12, 31), date(2026, 5, 1))


def inputs() -> tuple[list[RuleSet], list[tuple[EnterpriseFacts, date]]]:
    """The shipped rule sets, and the facts with their decision dates: every YAML case (at its date), then the
    seeded random facts (each at one of ``DATES``)."""
    rulesets = load_all()
    out: list[tuple[EnterpriseFacts, date]] = []
    for f in sorted((DEFAULT_DIR / "cases").glob("*.yaml")):
        out.extend((c.facts, c.as_of) for c in load_cases(f))
    rng = random.Random(RANDOM_SEED)
    for _ in range(RANDOM_FACTS):
        facts = random_facts(rng)
        out.append((facts, rng.choice(DATES)))
    return rulesets, out


def load() -> dict[str, Any]:
    with lzma.open(CORPUS, "rt", encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    assert data["format"] == FORMAT
    return data


def facts_of(data: dict[str, Any]) -> list[EnterpriseFacts]:
    return [EnterpriseFacts.model_validate_json(text) for text in data["facts"]]


def build() -> dict[str, Any]:
    from services.evaluation.domain.engine import eligible, evaluate, explain, template

    rulesets, cases = inputs()
    facts_texts = []
    for facts, _ in cases:
        text = facts.model_dump_json()
        again = EnterpriseFacts.model_validate_json(text)
        assert again == facts and repr(again) == repr(facts), text  # the stored facts are the evaluated ones
        facts_texts.append(text)
    templates = {}
    entries = []
    for rs in rulesets:
        tid, tpl = template(rs)
        templates[rs.id] = {"version": rs.version, "template_id": tid, "template": tpl}
        for i, (facts, as_of) in enumerate(cases):
            text, ok, score = explain(rs, facts, as_of)
            typed = evaluate(rs, facts, as_of).model_dump(mode="json")
            assert json.dumps(typed, ensure_ascii=False, separators=(",", ":")) == text
            assert eligible(rs, facts, as_of) is ok
            entries.append([rs.id, i, as_of.isoformat(), ok, None if score is None else str(score), text])
    return {"format": FORMAT, "rulesets": templates, "facts": facts_texts, "evaluations": entries}


def main() -> None:
    data = build()
    with lzma.open(CORPUS, "wt", encoding="utf-8", preset=9 | lzma.PRESET_EXTREME) as fh:
        json.dump(data, fh, ensure_ascii=False, separators=(",", ":"))
    print(f"{CORPUS}: {len(data['evaluations'])} evaluations, {CORPUS.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
