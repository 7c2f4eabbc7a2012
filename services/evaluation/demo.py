"""Demo data of the evaluation service.

``load_demo`` (before registry's demo): the shipped rule sets, stored versioned (idempotent).

``load_history`` (a later demo step, after registry's demo): a programme in motion. Demo enterprises and their
indicators arrive through registry's events; once evaluation has them, a deterministic selection of them is
taken through the real workflow with historical decision dates — nominated by the county, reviewed county →
city → province (national titles recorded by the province) by officials other than the one before them
(maker-checker), publicity, announcement on the historical day — for every tier from 2022 to this year; titles
whose three years ran out expire, one title is revoked. Its events carry the demo correlation id
(``shared.demo.demo_events``): notification keeps their notices in the inbox (no SMS on start). Idempotent: an
application already taken (enterprise, tier, batch year) is skipped, so a second load changes nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.auth import Principal, Role
from shared.db import create_engine, make_session_factory
from shared.demo import demo_events, wait_until
from shared.settings import Settings

FIRST_YEAR = 2022
# county-level units of the demo (zones such as 331199 have no county official of their own)
COUNTIES = ("330110", "330109", "331102", "331121", "331122", "331123", "331124", "331125", "331126", "331127",
            "331181")
CITY_OF = {"3301": "330100", "3311": "331100"}
# Each selected enterprise lives one story: its titles as (tier, year, month of the announcement), in order
# (a later title's prerequisite — 创新型 for 专精特新 from 2026, 省级专精特新 for 小巨人 and 隐形冠军, 小巨人 for
# 单项冠军 — is held when it is decided). Years are offsets from 2022; the current year's entries are skipped
# when their month has not come yet.
STORIES: tuple[tuple[tuple[str, int, int], ...], ...] = (
    (("innovative", 0, 5),),                                                         # expired 2025
    (("innovative", 1, 6), ("srdi", 2, 4)),                                          # innovative expired 2026
    (("srdi", 0, 9), ("little_giant", 1, 7)),                                        # both expired
    (("srdi", 1, 3), ("little_giant", 2, 8), ("single_champion", 3, 11)),
    (("srdi", 2, 5), ("hidden_champion", 3, 9)),
    (("srdi", 1, 5), ("little_giant", 2, 5), ("single_champion_product", 3, 6)),
    (("innovative", 2, 10), ("srdi", 3, 6)),
    (("innovative", 3, 4), ("srdi", 4, 5)),
    (("srdi", 3, 2), ("hidden_champion", 4, 3)),
    (("innovative", 4, 2),),
)
REVOKED_STORY = 6  # this story's 专精特新 of its first enterprise is revoked (ground "other")
HISTORY_CONCURRENCY = 4  # stories taken through the workflow at once


async def load_demo(settings: Settings, size: int) -> None:
    from services.evaluation.db.ruleset_store import sync_rulesets

    engine = create_engine(settings.database_url, pool_size=2)
    try:
        await sync_rulesets(make_session_factory(engine))
    finally:
        await engine.dispose()


# ---------------------------------------------------------------------------------------------- history


@dataclass(frozen=True)
class Step:
    uscc: str
    region: str
    tier: str
    level: str
    announced_on: date


def _officials(region: str) -> dict[str, Principal]:
    """The demo officials (shared/demo.py prints their tokens): a maker and a checker per jurisdiction."""
    city = CITY_OF[region[:4]]
    return {
        "county_a": Principal(sub=f"county-{region}-a", role=Role.COUNTY, region=region),
        "county_b": Principal(sub=f"county-{region}-b", role=Role.COUNTY, region=region),
        "city_a": Principal(sub=f"city-{city}-a", role=Role.CITY, region=city),
        "city_b": Principal(sub=f"city-{city}-b", role=Role.CITY, region=city),
        "prov_a": Principal(sub="prov-330000-a", role=Role.PROVINCE, region="330000"),
        "prov_b": Principal(sub="prov-330000-b", role=Role.PROVINCE, region="330000"),
    }


def _order(uscc: str) -> str:
    return hashlib.sha256(f"zjtx-demo-history:{uscc}".encode()).hexdigest()


def plan(enterprises: list[tuple[str, str]], size: int, today: date) -> list[list[Step]]:
    """Per selected enterprise its titles in order (deterministic: the selection depends only on the USCCs)."""
    from services.evaluation.domain.workflow import default_level

    candidates = sorted((e for e in enterprises if e[1] in COUNTIES), key=lambda e: _order(e[0]))
    wanted = max(len(STORIES), size // 50)
    out: list[list[Step]] = []
    for i, (uscc, region) in enumerate(candidates[:wanted]):
        steps = []
        for tier, offset, month in STORIES[i % len(STORIES)]:
            day = date(FIRST_YEAR + offset, month, 10 + i % 15)
            if day > today - timedelta(days=7):
                break
            steps.append(Step(uscc, region, tier, default_level(tier), day))
        if steps:
            out.append(steps)
    return out


@contextmanager
def _decision_date(day: date) -> Iterator[None]:
    """The workflow's use cases decide at ``EvaluationConfig.decision_date()``: this task's historical day."""
    from services.evaluation.config import TASK_DECISION_DATE

    token = TASK_DECISION_DATE.set(day)
    try:
        yield
    finally:
        TASK_DECISION_DATE.reset(token)


async def _take(session: AsyncSession, step: Step) -> bool:
    """One application through the workflow to its announcement; False when it was taken before."""
    from services.evaluation.app import applications as cases
    from services.evaluation.db.applications import pending_duplicate
    from services.evaluation.domain import workflow as wf

    batch_year = step.announced_on.year
    if await pending_duplicate(session, step.uscc, step.tier, batch_year, ()) is not None:
        return False
    who = _officials(step.region)
    national = step.level == "national"
    # submitted ~2 months before the announcement; a review every two weeks; publicity after the decision
    day = step.announced_on - timedelta(days=70 if national else 56)
    with _decision_date(day):
        app = await cases.submit(session, who["county_a"], uscc=step.uscc, tier=step.tier, level=step.level,
                                 batch_year=batch_year, recheck_of=None)
    stages = [("county", who["county_b"]), ("city", who["city_a"]), ("province", who["prov_a"])]
    stages = [(s, p) for s, p in stages if s in wf.stages_for(step.level)]
    if national:
        stages.append(("national", who["prov_b"]))
    for stage, official in stages:
        day += timedelta(days=14)
        with _decision_date(day):
            app = await cases.review(session, official, uuid.UUID(app["id"]), stage=stage, decision="approved",
                                     comment=f"{stage} 审核通过 (演示数据)")
    announcer = who["prov_a"] if national else who["prov_b"]  # not the official who decided (maker-checker)
    if step.level in ("county", "city"):
        announcer = who[f"{step.level}_a"]
    with _decision_date(step.announced_on):
        await cases.announce(session, announcer, uuid.UUID(app["id"]), step.announced_on)
    return True


async def _wait_for_enterprises(sf: async_sessionmaker[AsyncSession], size: int, wait_seconds: float) -> None:
    """Registry's demo enterprises reach evaluation through its events: wait until all ``size`` are here."""
    from services.evaluation.db.models import Enterprise

    await wait_until(sf, select(func.count()).select_from(Enterprise), size, "enterprises from registry",
                     wait_seconds)


async def settle(settings: Settings, size: int, *, wait_seconds: float = 120.0) -> None:
    """The last demo step of evaluation (after registry's indicators): wait until the latest year's report of
    every demo enterprise has been evaluated (a report is stored with its evaluations, in one transaction)."""
    from services.evaluation.db.models import IndicatorReport

    engine = create_engine(settings.database_url, pool_size=1)
    try:
        await wait_until(make_session_factory(engine), select(func.count()).select_from(IndicatorReport).where(
            IndicatorReport.year == date.today().year - 1), size, "indicator reports evaluated", wait_seconds)
    finally:
        await engine.dispose()


async def load_history(
    settings: Settings, size: int, *, wait_seconds: float = 120.0, today: date | None = None
) -> None:
    """Recognitions of every tier since 2022 through the workflow, expiries and a revocation (idempotent)."""
    from services.evaluation.app.recognition import revoke_by_official
    from services.evaluation.app.workers import expire_and_remind
    from services.evaluation.db.models import Enterprise, Recognition

    today = today or date.today()
    engine = create_engine(settings.database_url, pool_size=HISTORY_CONCURRENCY)
    sf = make_session_factory(engine)
    try:
        await _wait_for_enterprises(sf, size, wait_seconds)
        async with sf() as session:
            rows = (await session.execute(
                select(Enterprise.uscc, Enterprise.region_code).where(Enterprise.status != "deregistered"))).all()
        stories = plan([(u, r) for u, r in rows], size, today)
        with demo_events("evaluation-history"):
            # the enterprises' stories are independent: a few at a time (each its own steps in order, on its own
            # decision dates); the workflow waits on the database, not on the processor
            slots = asyncio.Semaphore(HISTORY_CONCURRENCY)

            async def story(steps: list[Step]) -> None:
                async with slots:
                    for step in steps:
                        async with sf() as session, session.begin():
                            await _take(session, step)

            await asyncio.gather(*(story(steps) for steps in stories))
            # one title revoked: the 专精特新 of the first enterprise of the revoked story (if still active)
            target = next((s for i, steps in enumerate(stories) if i % len(STORIES) == REVOKED_STORY
                           for s in steps if s.tier == "srdi"), None)
            if target is not None:
                async with sf() as session, session.begin():
                    rec = (await session.execute(select(Recognition).where(
                        Recognition.uscc == target.uscc, Recognition.tier == "srdi",
                        Recognition.status == "active"))).scalars().first()
                    if rec is not None:
                        on = min(today - timedelta(days=30), target.announced_on + timedelta(days=400))
                        with _decision_date(on):
                            await revoke_by_official(session, _officials(target.region)["prov_a"], rec.id,
                                                     ground="other", evidence="演示数据: 复核发现不再符合认定条件",
                                                     revoked_on=on)
            await expire_and_remind(sf, today)  # what the expiry worker does: titles whose 3 years ran out
    finally:
        await engine.dispose()
