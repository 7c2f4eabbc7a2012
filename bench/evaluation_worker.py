"""CPU per enterprise of the re-evaluation worker (``services.evaluation.app.reevaluation._eval_chunk``), no database.

    .venv/bin/python bench/evaluation_worker.py [--n 20000] [--repeat 5] [--ruleset MIIT-2022-63-innovative]

Builds N enterprises' inputs as the job hands them to a worker (the tuples of ``jobs._inputs``: no founding
date, industry or titles, as ``bench/evaluation_reevaluate.py`` seeds them; the indicators of its
``_indicators`` as the JSON text PostgreSQL's ``jsonb::text`` writes: keys ordered by length then bytes,
``", "`` and ``": "`` separators), initialises the worker state (``jobs._init_worker``) and times
``jobs._eval_chunk`` over chunks of 1000 (the evaluation and the rows it writes as COPY text), then the parts of
it separately:

- _evaluate: the evaluation alone (results as tuples);

- parse:  ``shared.indicators.stored_indicators`` of the indicator text ("(validated)": the full
  ``IndicatorSet.model_validate_json`` it replaces in the worker, for comparison);
- facts:  the ``EnterpriseFacts`` around the parsed indicators, as ``domain.facts.stored_facts`` builds them;
- encode: ``domain.engine.encode`` (the evaluation and the compact explanation).

Each figure is the best of ``--repeat`` runs of this process's CPU time (the dev machine's 2 cores are shared:
compare best-ofs), in µs per enterprise, with the cyclic collector paused as ``_evaluate`` pauses it. It
also checks that every chunk's results are the same on every run.

Measured 2026-12-02 (2-core dev machine, load ~1, --n 20000, best of 7, µs per enterprise; ``facts`` before
was ``model_construct``, ~3.3):

    _indicators        version  _eval_chunk  parse  facts  encode
    with compliance    before      79-82      11     3.3    63-65
    flags (current)    after       35-37      11     2.6    24-25
    without them       before      92-93      11     3.3    72-73
    (at 670758b)       after       33-35      11     2.6    25-26

(callgrind, 1000 → 3000 enterprises: 771k → 398k instructions per enterprise.) What is left: the indicator
JSON's validation (pydantic-core; the Decimal constraints are most of it), ~2.5 µs per ratio-scored item
(its amounts never repeat: metric value, display, band), ~3 µs reading the inputs' JSON texts, and the
explanation's assembly.

2026-12-05, the three evaluators made one (``domain.engine``: one walk, the explanation writer fed by it), A/B
against the tree before, interleaved, best of 3 × 5 on a machine at load 7-10: ``_eval_chunk`` 43.6 vs 45.1,
``encode`` 24.4 vs 23.4 (alone, 4 × 7 alternated: 23.0 vs 21.9); callgrind of ``stored_facts`` + ``encode``,
1000 → 3000 enterprises: 536.7k vs 537.4k instructions per enterprise (the same work).
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.evaluation_reevaluate import _indicators
from services.evaluation.app import reevaluation as jobs
from services.evaluation.domain.engine import encode
from services.evaluation.domain.facts import EnterpriseFacts
from services.evaluation.domain.loader import load_all
from shared.indicators import IndicatorSet, stored_indicators

_REGIONS = ["330102", "330106", "330110", "330205", "330302", "331102", "331121"]


def jsonb_text(obj: dict[str, object]) -> str:
    """``obj`` as PostgreSQL prints a jsonb value: keys by length then bytes, spaced separators."""
    ordered = {k: obj[k] for k in sorted(obj, key=lambda k: (len(k.encode()), k.encode()))}
    return json.dumps(ordered, ensure_ascii=False, separators=(", ", ": "))


def inputs(n: int, seed: int = 42) -> list[tuple[Any, ...]]:
    """The job's worker tuples (uscc, region, year, founded_on, industry, is_mfg, indicators, titles)."""
    rng = random.Random(seed)
    out: list[tuple[Any, ...]] = []
    for i in range(n):
        region = _REGIONS[i % len(_REGIONS)]
        out.append((f"91{region}{i:010d}", region, 2025, None, None, None, jsonb_text(_indicators(rng)), []))
    return out


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    """Best CPU time of ``repeat`` calls, with the cyclic collector paused (as in ``_eval_chunk``)."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            t = time.process_time()
            fn()
            best = min(best, time.process_time() - t)
        finally:
            gc.enable()
    return best


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=20_000, help="enterprises (default 20000)")
    p.add_argument("--repeat", type=int, default=5, help="runs per figure, the best is shown (default 5)")
    p.add_argument("--chunk", type=int, default=1000, help="enterprises per _eval_chunk call (default 1000)")
    p.add_argument("--ruleset", default="MIIT-2022-63-innovative")
    args = p.parse_args()

    rs = next(r for r in load_all() if r.id == args.ruleset)
    as_of = jobs.clip_as_of(rs, date.today())
    jobs._init_worker(rs.model_dump(mode="json"))
    wrs = jobs._WORKER_RS
    data = inputs(args.n)
    chunks = [data[i:i + args.chunk] for i in range(0, len(data), args.chunk)]
    n = len(data)

    first = [jobs._evaluate(c, as_of) for c in chunks]  # warm-up (plan built on first use)

    def whole() -> None:
        for c, want in zip(chunks, first, strict=True):
            got = jobs._evaluate(c, as_of)
            assert [r[3:] for r in got] == [r[3:] for r in want], "results differ between runs"

    sink = jobs._Sink("0" * 64, "00000000-0000-0000-0000-000000000000", as_of)

    def with_rows() -> None:
        for c in chunks:
            jobs._eval_chunk(c, as_of, None, sink.texts())

    texts = [t[6] for t in data]
    parsed = [IndicatorSet.model_validate_json(t) for t in texts]

    def facts_of(ind: IndicatorSet, t: tuple[Any, ...]) -> EnterpriseFacts:
        return EnterpriseFacts(
            indicators=ind, titles=[], founded_on=t[3], region_code=t[1], industry_code=t[4],
            is_manufacturing=t[5], reporting_year=t[2], is_recheck=False,
        )

    facts = [facts_of(ind, t) for ind, t in zip(parsed, data, strict=True)]
    timings = {
        "_eval_chunk": best_of(args.repeat, with_rows),
        "_evaluate": best_of(args.repeat, whole),
        "parse": best_of(args.repeat, lambda: [stored_indicators(t) for t in texts]),
        "(validated)": best_of(args.repeat, lambda: [IndicatorSet.model_validate_json(t) for t in texts]),
        "facts": best_of(args.repeat, lambda: [facts_of(i, t) for i, t in zip(parsed, data, strict=True)]),
        "encode": best_of(args.repeat, lambda: [encode(wrs, f, as_of) for f in facts]),
    }
    eligible = sum(1 for c in first for r in c if r[3]["eligible"])
    print(f"{args.ruleset}, as_of {as_of}, {n} enterprises ({eligible} eligible), best of {args.repeat}:")
    for what, secs in timings.items():
        print(f"  {what:12s} {secs / n * 1e6:7.1f} µs/enterprise")
    return 0


if __name__ == "__main__":
    sys.exit(main())
