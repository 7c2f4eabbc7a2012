"""Policy simulation (``services.evaluation.app.simulation``): the eligibility-only, streamed, off-loop pass gives
exactly what evaluating every enterprise with the reference engine gives — per region counts, gainers and
losers in ``uscc`` order — in worker processes and in a thread, over several chunks, with titles (valid,
expired, revoked), several report years, deregistered enterprises and a territory filter."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import yaml
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.evaluation.app import simulation
from services.evaluation.app.simulation import simulate_eligibility
from services.evaluation.db.models import Enterprise, IndicatorReport, Recognition
from services.evaluation.domain.engine import evaluate
from services.evaluation.domain.facts import EnterpriseFacts, HeldTitle
from services.evaluation.domain.loader import load_all
from services.evaluation.domain.rules import RuleSet
from shared.auth import region_covers
from shared.indicators import IndicatorSet
from tests.evaluation.conftest import TEST_RULESETS, new_uscc

AS_OF = date(2026, 6, 30)
REGIONS = ["330110", "330106", "330205", "320100"]


async def _seed(sf: async_sessionmaker[AsyncSession], n: int) -> None:
    rng = random.Random(7)
    async with sf() as s, s.begin():
        for i in range(n):
            region = REGIONS[i % len(REGIONS)]
            uscc = new_uscc(region)
            s.add(Enterprise(uscc=uscc, name=f"企业{i}", region_code=region,
                             status="deregistered" if i % 17 == 5 else "active", version=1))
            await s.flush()
            for year in (2024, 2025)[: rng.randint(1, 2)]:
                revenue = rng.choice([8_000_000, 10_000_000, 12_000_000, 50_000_000, 60_000_000])
                s.add(IndicatorReport(uscc=uscc, year=year, revision=1, region_code=region, indicators={
                    "operating_revenue": str(revenue),
                    "rd_expense": str(int(revenue * rng.choice([0.02, 0.03, 0.04, 0.05, 0.08]))),
                }))
            if rng.random() < 0.5:
                start = rng.choice([date(2022, 1, 1), date(2024, 1, 1)])
                s.add(Recognition(uscc=uscc, region_code=region, tier="srdi", level="province",
                                  batch_year=start.year, announced_on=start, valid_from=start,
                                  valid_to=date(start.year + 3, 12, 31),
                                  status="revoked" if rng.random() < 0.2 else "active"))


def _covers(territory: str) -> Callable[[str], bool]:
    return lambda region: territory == "*" or region_covers(territory, region)


async def _reference(sf: async_sessionmaker[AsyncSession], draft: Any, base: Any, territory: str) -> dict[str, Any]:
    """What the endpoint computed before: the full reference engine per enterprise, latest report."""
    async with sf() as s:
        ents = {e.uscc: e for e in (await s.execute(Enterprise.__table__.select())).all()}
        reports = (await s.execute(IndicatorReport.__table__.select())).all()
        recs = (await s.execute(Recognition.__table__.select())).all()
    latest: dict[str, Any] = {}
    for r in reports:
        if r.uscc not in latest or r.year > latest[r.uscc].year:
            latest[r.uscc] = r
    regions: dict[str, list[int]] = {}
    gainers, losers = [], []
    for uscc in sorted(latest):
        e, r = ents[uscc], latest[uscc]
        if e.status == "deregistered" or not _covers(territory)(e.region_code):
            continue
        in_draft, in_base = draft.covers_region(e.region_code), base.covers_region(e.region_code)
        if not (in_draft or in_base):
            continue
        facts = EnterpriseFacts(
            indicators=IndicatorSet.model_validate(r.indicators),
            titles=[HeldTitle(tier=t.tier, level=t.level, valid_from=t.valid_from, valid_to=t.valid_to,
                              revoked=t.status == "revoked") for t in recs if t.uscc == uscc],
            region_code=e.region_code, reporting_year=r.year, founded_on=e.founded_on,
            industry_code=e.industry_code, is_manufacturing=e.is_manufacturing,
        )
        new = in_draft and evaluate(draft, facts, AS_OF).eligible
        old = in_base and evaluate(base, facts, AS_OF).eligible
        stats = regions.setdefault(e.region_code, [0, 0, 0])
        stats[0] += 1
        stats[1] += new
        stats[2] += old
        if new and not old:
            gainers.append(uscc)
        elif old and not new:
            losers.append(uscc)
    return {"regions": regions, "gainers": gainers, "losers": losers}


@pytest.mark.parametrize("nworkers", [0, 2])
async def test_simulation_equals_reference(
    sf: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch, nworkers: int
) -> None:
    await _seed(sf, 80)
    monkeypatch.setattr(simulation, "CHUNK", 7)  # many chunks, more than the in-flight bound
    rulesets = {rs.id: rs for rs in load_all(TEST_RULESETS)}
    text = (TEST_RULESETS / "T-srdi.yaml").read_text(encoding="utf-8").replace("value: 1000万", "value: 500万")
    lower_revenue = RuleSet.model_validate(yaml.safe_load(text))
    cases = [
        (rulesets["T-srdi"].model_copy(update={"pass_score": Decimal(15)}), rulesets["T-srdi"], "330000"),
        (lower_revenue, rulesets["T-srdi"], "330100"),
        # a national draft against a provincial base: 320100 is only in the draft
        (rulesets["T-giant"], rulesets["T-srdi"], "*"),
    ]
    changed = 0
    for draft, base, territory in cases:
        want = await _reference(sf, draft, base, territory)
        for limit in (1000, 3):
            async with sf() as s:
                got = await simulate_eligibility(
                    s, draft, base, AS_OF, _covers(territory), list_limit=limit, nworkers=nworkers,
                )
            assert got.regions == want["regions"]
            assert (got.gained, got.lost) == (len(want["gainers"]), len(want["losers"]))
            assert got.gainers == want["gainers"][:limit] and got.losers == want["losers"][:limit]
            changed += got.gained + got.lost
    assert changed > 0


async def test_simulation_leaves_the_event_loop_free(sf: async_sessionmaker[AsyncSession],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """While the workers evaluate, the loop keeps serving (ticks of 10 ms stay on time)."""
    await _seed(sf, 40)
    monkeypatch.setattr(simulation, "CHUNK", 5)
    rs = {r.id: r for r in load_all(TEST_RULESETS)}["T-srdi"]
    late = 0.0
    done = asyncio.Event()

    async def tick() -> None:
        nonlocal late
        while not done.is_set():
            t = time.perf_counter()
            await asyncio.sleep(0.01)
            late = max(late, time.perf_counter() - t - 0.01)

    ticker = asyncio.create_task(tick())
    async with sf() as s:
        got = await simulate_eligibility(s, rs, rs, AS_OF, lambda r: True, list_limit=10, nworkers=1)
    done.set()
    await ticker
    assert got.gained == got.lost == 0 and sum(v[0] for v in got.regions.values()) > 0
    assert late < 1.0
