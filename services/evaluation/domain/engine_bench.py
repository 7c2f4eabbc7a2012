"""Tiny timing script: ``.venv/bin/python -m services.evaluation.domain.engine_bench [N]``.

Evaluates every YAML case of every shipped rule set N times and prints the mean time per call of the
reference path (``evaluate()`` + ``model_dump_json()``, what an explained result costs) and of the fast path
(``fast.explain()``, the same JSON text).
"""

from __future__ import annotations

import sys
import time

from services.evaluation.domain.engine import evaluate
from services.evaluation.domain.fast import explain
from services.evaluation.domain.loader import DEFAULT_DIR, load_all, load_cases


def main(n: int = 200) -> dict[str, float]:
    rulesets = {r.id: r for r in load_all()}
    out: dict[str, float] = {}
    for f in sorted((DEFAULT_DIR / "cases").glob("*.yaml")):
        cases = load_cases(f)
        rs = rulesets[cases[0].ruleset]
        for c in cases:  # warm-up (compiles once)
            evaluate(rs, c.facts, c.as_of)
        t0 = time.perf_counter()
        for _ in range(n):
            for c in cases:
                evaluate(rs, c.facts, c.as_of).model_dump_json()
        dt = (time.perf_counter() - t0) / (n * len(cases))
        t0 = time.perf_counter()
        for _ in range(n):
            for c in cases:
                explain(rs, c.facts, c.as_of)
        fast = (time.perf_counter() - t0) / (n * len(cases))
        out[rs.id] = dt
        print(f"{rs.id:40s} {dt * 1e6:8.1f} µs/evaluate+dump  {fast * 1e6:8.1f} µs/explain  ({len(cases)} cases × {n})")
    return out


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
