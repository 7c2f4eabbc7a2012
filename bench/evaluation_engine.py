"""CPU per evaluation of the rules engine's modes, per shipped rule set, on its YAML cases (no database).

    .venv/bin/python bench/evaluation_engine.py [--n 200]

Evaluates every YAML case of every shipped rule set N times in each mode of the one evaluator
(``services.evaluation.domain.engine``) and prints the mean µs per call:

- eligible: eligibility only (the walk stops once the decision is known; the policy simulation's mode);
- decide:   eligibility and score, no explanation;
- encode:   the compact explanation an evaluation stores (the re-evaluation job's mode);
- explain:  the explanation's full JSON text (``encode`` + ``explanation.render`` with the template);
- evaluate: the typed ``EvaluationResult`` (``explain`` + pydantic validation of the text).

The YAML cases are few and varied, so the outcome memo helps less than on a real population (see
``bench/evaluation_worker.py`` for the re-evaluation worker's CPU on seeded enterprises).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.evaluation.domain import engine
from services.evaluation.domain.loader import DEFAULT_DIR, load_all, load_cases

MODES: dict[str, Callable[..., Any]] = {
    "eligible": engine.eligible,
    "decide": engine.decide,
    "encode": engine.encode,
    "explain": engine.explain,
    "evaluate": engine.evaluate,
}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=200, help="passes over the cases (default 200)")
    args = p.parse_args()
    rulesets = {r.id: r for r in load_all()}
    print(f"{'rule set':40s} " + " ".join(f"{m:>9s}" for m in MODES) + "   (µs per call)")
    for f in sorted((DEFAULT_DIR / "cases").glob("*.yaml")):
        cases = load_cases(f)
        rs = rulesets[cases[0].ruleset]
        row = []
        for fn in MODES.values():
            for c in cases:  # warm-up (plan compiled, memo filled)
                fn(rs, c.facts, c.as_of)
            t0 = time.process_time()
            for _ in range(args.n):
                for c in cases:
                    fn(rs, c.facts, c.as_of)
            row.append((time.process_time() - t0) / (args.n * len(cases)))
        print(f"{rs.id:40s} " + " ".join(f"{t * 1e6:9.1f}" for t in row) + f"   ({len(cases)} cases × {args.n})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
