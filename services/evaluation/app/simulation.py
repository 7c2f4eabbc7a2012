"""Policy simulation over every enterprise in a territory: eligible under a draft rule set vs under the rule
set in force, per region, with who gains and who loses. Nothing is stored or published.

Only eligibility is needed, so each enterprise is evaluated by the engine's eligibility-only mode
(``domain.engine.checker``: the walk stops once the decision is known, no explanation), once per rule set on one shared
context (the metrics are computed once for both). The latest indicator report of every active enterprise
is streamed from a server-side cursor in chunks of ``CHUNK`` rows; each chunk is evaluated in a worker
process (a forkserver ``ProcessPoolExecutor`` kept for the service's life, ``ZJTX_EVAL_SIMULATION_WORKERS``
processes, default min(4, CPUs); 0: a thread of the service process) while the next chunks are read, with
at most two chunks per worker in flight; the workers run at a lower priority (``NICE``). The event loop
only reads rows and merges counts, so the service stays responsive during a simulation. Results are merged
in ``uscc`` order: the gainer and loser lists are those of a sequential pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.evaluation.app.processes import KeptPool
from services.evaluation.db.reports import LATEST_REPORTS
from shared.gc_control import collector_paused

CHUNK = 2000  # enterprises per task
NICE = 5  # niceness added to the worker processes

_ROWS = text(LATEST_REPORTS + " ORDER BY e.uscc")
_TITLES = text("SELECT uscc, tier, level, valid_from, valid_to, status FROM evaluation.recognitions")


@dataclass
class Outcome:
    """Per region: [enterprises, eligible under the draft, eligible under the rule set in force]; the gainers
    and losers (in ``uscc`` order, the first ``list_limit``) and their numbers."""

    regions: dict[str, list[int]] = field(default_factory=dict)
    gainers: list[str] = field(default_factory=list)
    losers: list[str] = field(default_factory=list)
    gained: int = 0
    lost: int = 0


def workers() -> int:
    raw = os.environ.get("ZJTX_EVAL_SIMULATION_WORKERS")
    if raw is not None and raw.strip():
        return max(0, int(raw))
    return min(4, os.cpu_count() or 1)


def _init_worker() -> None:
    """A simulation is a bulk read-only computation: its processes yield the CPU to the service's own
    (requests, event consumers, relay) and to PostgreSQL when the cores are busy."""
    with contextlib.suppress(OSError):
        os.nice(NICE)


_POOL = KeptPool(initializer=_init_worker)


def _pool(n: int) -> ProcessPoolExecutor:
    """The simulation's worker processes (started on first use, kept afterwards)."""
    return _POOL.get(n)


def shutdown() -> None:
    """Stop the worker processes (they are also stopped at interpreter exit)."""
    _POOL.shutdown()


# rule sets by simulation key, in whichever process evaluates (the service's thread or a worker)
_RULESETS: dict[str, tuple[Any, Any]] = {}
_RULESETS_LOCK = threading.Lock()


def _rulesets(key: str, defs: tuple[dict[str, Any], dict[str, Any] | None]) -> tuple[Any, Any]:
    with _RULESETS_LOCK:
        got = _RULESETS.get(key)
        if got is None:
            from services.evaluation.domain.engine import compile_ruleset
            from services.evaluation.domain.rules import RuleSet

            draft = RuleSet.model_validate(defs[0])
            base = None if defs[1] is None else RuleSet.model_validate(defs[1])
            for rs in (draft, base):
                if rs is not None:
                    compile_ruleset(rs)
            if len(_RULESETS) >= 8:
                _RULESETS.clear()
            got = _RULESETS[key] = (draft, base)
        return got


def _eval_chunk(
    key: str, defs: tuple[Any, Any], rows: list[tuple[Any, ...]], as_of: date
) -> tuple[dict[str, list[int]], list[str], list[str]]:
    """Evaluate plain tuples ``(uscc, region, year, founded_on, industry, is_mfg, indicators JSON, titles,
    in_draft, in_base)``; return (per region [enterprises, draft, current], gainers, losers) in row order.
    ``defs``: the draft and base rule sets, as JSON definitions (in a worker process, validated and compiled
    once per ``key``) or as the objects (in a thread of the service). The cyclic GC is paused: many
    short-lived containers, no cycles."""
    from services.evaluation.domain.engine import checker
    from services.evaluation.domain.facts import stored_facts
    from services.evaluation.domain.rule_metrics import Ctx

    draft, base = defs if not isinstance(defs[0], dict) else _rulesets(key, defs)
    in_new = checker(draft)
    in_old = (lambda ctx: False) if base is None else checker(base)
    regions: dict[str, list[int]] = {}
    gainers: list[str] = []
    losers: list[str] = []
    with collector_paused():
        for row in rows:
            uscc, region, in_draft, in_base = row[0], row[1], row[8], row[9]
            ctx = Ctx(stored_facts(row), as_of)  # shared by both rule sets: the metrics are computed once
            new = in_draft and in_new(ctx)
            old = in_base and in_old(ctx)
            stats = regions.get(region)
            if stats is None:
                stats = regions[region] = [0, 0, 0]
            stats[0] += 1
            stats[1] += new
            stats[2] += old
            if new and not old:
                gainers.append(uscc)
            elif old and not new:
                losers.append(uscc)
    return regions, gainers, losers


async def simulate_eligibility(
    session: AsyncSession,
    draft: Any,
    base: Any | None,
    as_of: date,
    covers: Callable[[str], bool],
    *,
    list_limit: int,
    nworkers: int | None = None,
) -> Outcome:
    """Every active enterprise with a report whose region ``covers`` (the caller's territory) and the draft
    or the base rule set covers: eligible under each (latest report, titles held). Reads with a server-side
    cursor in the session's transaction; evaluates in worker processes (see the module's doc)."""
    n = workers() if nworkers is None else nworkers
    key = uuid.uuid4().hex
    defs: tuple[Any, Any]
    executor: Executor | None
    if n > 0:  # the definitions travel with each task; a worker validates and compiles them once per key
        defs = (draft.model_dump(mode="json"), None if base is None else base.model_dump(mode="json"))
        executor = _pool(n)
    else:  # the rule-set objects themselves, evaluated in the loop's default thread pool
        defs = (draft, base)
        executor = None
    titles: dict[str, list[tuple[Any, ...]]] = {}
    for uscc, tier, level, valid_from, valid_to, status in (await session.execute(_TITLES)).all():
        titles.setdefault(uscc, []).append((tier, level, valid_from, valid_to, status == "revoked"))
    scope: dict[str, tuple[bool, bool] | None] = {}  # region → (in draft, in base), None: outside

    def in_scope(region: str) -> tuple[bool, bool] | None:
        if region not in scope:
            flags = None
            if covers(region):
                in_draft = bool(draft.covers_region(region))
                in_base = base is not None and bool(base.covers_region(region))
                flags = (in_draft, in_base) if in_draft or in_base else None
            scope[region] = flags
        return scope[region]

    out = Outcome()

    def merge(part: tuple[dict[str, list[int]], list[str], list[str]]) -> None:
        regions, gainers, losers = part
        for region, (e, d, c) in regions.items():
            stats = out.regions.get(region)
            if stats is None:
                stats = out.regions[region] = [0, 0, 0]
            stats[0] += e
            stats[1] += d
            stats[2] += c
        out.gained += len(gainers)
        out.lost += len(losers)
        out.gainers.extend(gainers[: max(0, list_limit - len(out.gainers))])
        out.losers.extend(losers[: max(0, list_limit - len(out.losers))])

    loop = asyncio.get_running_loop()
    inflight: deque[asyncio.Future[tuple[dict[str, list[int]], list[str], list[str]]]] = deque()
    limit = max(1, 2 * n)
    no_titles: list[tuple[Any, ...]] = []
    try:
        result = await session.stream(_ROWS)
        try:
            async for part in result.partitions(CHUNK):
                rows = []
                for uscc, region, founded_on, industry, is_mfg, year, indicators in part:
                    flags = in_scope(region)
                    if flags is not None:
                        rows.append((uscc, region, year, founded_on, industry, is_mfg, indicators,
                                     titles.get(uscc, no_titles), flags[0], flags[1]))
                if not rows:
                    continue
                inflight.append(loop.run_in_executor(executor, _eval_chunk, key, defs, rows, as_of))
                while len(inflight) >= limit:  # bounded read-ahead; merged in order
                    merge(await inflight.popleft())
        finally:
            await result.close()
        while inflight:
            merge(await inflight.popleft())
    except BrokenProcessPool:
        if executor is not None:
            _POOL.drop(executor)
        raise
    finally:
        for fut in inflight:
            fut.cancel()
    return out
