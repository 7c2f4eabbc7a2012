"""The demo's history (``services/evaluation/demo.py`` ``load_history``, run by ``zjtx demo`` after registry's
demo): recognitions of every tier since 2022 taken through the workflow with historical dates and maker-checker
reviews, expiries, a revocation; events marked as the demo's; a second load changes nothing."""

from __future__ import annotations

import time
from datetime import date
from itertools import pairwise

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.evaluation.db.models import Application, Enterprise, Recognition, backbone
from services.evaluation.demo import COUNTIES, load_demo, load_history
from shared.demo import is_demo_correlation
from shared.tiers import TIERS
from tests.evaluation.conftest import new_uscc
from tests.harness import settings

SIZE = 1000  # 20 enterprises with a history (size // 50): every story twice


async def _counts(sf: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with sf() as s:
        return {t: (await s.execute(text(f"SELECT count(*) FROM evaluation.{t}"))).scalar_one()
                for t in ("applications", "recognitions", "outbox", "audit_log", "evaluations")}


async def test_history_of_every_tier_through_the_workflow_and_idempotent(
    sf: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ZJTX_EVAL_TITLE_RULES_DIR", raising=False)  # the shipped title rules, as in the demo
    async with sf() as s, s.begin():  # the enterprises registry's demo publishes, as evaluation keeps them
        for i in range(SIZE):
            region = COUNTIES[i % len(COUNTIES)]
            s.add(Enterprise(uscc=new_uscc(region), name=f"演示企业{i}", region_code=region, status="active",
                             founded_on=date(2010, 1, 1), version=1))
    cfg = settings("evaluation")
    await load_demo(cfg, SIZE)
    started = time.perf_counter()
    await load_history(cfg, SIZE, wait_seconds=5)
    took = time.perf_counter() - started
    today = date.today()

    async with sf() as s:
        recs = (await s.execute(select(Recognition))).scalars().all()
        apps = {a.id: a for a in (await s.execute(select(Application))).scalars().all()}
    assert {r.tier for r in recs} == set(TIERS)
    assert min(r.announced_on for r in recs).year == 2022
    assert {r.announced_on.year for r in recs} >= set(range(2022, min(today.year, 2025) + 1))
    expired = [r for r in recs if r.status == "expired"]
    assert expired and all(r.valid_to < today and r.announced_on.year in (2022, 2023) for r in expired)
    assert all(r.valid_to < today for r in recs if r.announced_on.year == 2022)
    assert len([r for r in recs if r.status == "revoked"]) == 1
    assert any(r.status == "active" for r in recs)
    for r in recs:  # each through the real workflow: submitted, reviewed at every stage, announced
        assert r.application_id is not None
        app = apps[r.application_id]
        assert app.state == "recognised"
        steps = [h["action"] for h in app.history]
        stages = ["review_county", "review_city", "review_province"] + (
            ["review_national"] if r.level == "national" else [])
        assert steps == ["submit", *stages, "announce"], steps
        subs = [h["by"] for h in app.history]
        assert all(a != b for a, b in pairwise(subs)), subs  # maker-checker
        assert app.history[-1]["announced_on"] == r.announced_on.isoformat()
        assert app.publicity_ends_on is not None and app.publicity_ends_on < r.announced_on
    async with sf() as s:
        ob = backbone.outbox
        heads = (await s.execute(select(ob.c.headers).where(ob.c.type != "zjtx.evaluation.ruleset.published.v1")
                                 )).scalars().all()
    # marked as the demo's: notification keeps the notices they cause in the inbox (no SMS on start)
    assert len(heads) > 5 * len(recs) and all(is_demo_correlation(h.get("ce_correlationid")) for h in heads)

    before = await _counts(sf)
    await load_history(cfg, SIZE, wait_seconds=5)
    assert await _counts(sf) == before
    async with sf() as s:
        assert (await s.execute(select(func.count()).select_from(Enterprise))).scalar_one() == SIZE
    assert took < 30, took
