"""Fixtures of the agency-feed tests: clean registry, evaluation, notification and finance schemas (real
PostgreSQL), the test rule set with the credit conditions, session factories, a producer's bootstrap."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.evaluation.db.models import Enterprise, IndicatorReport, Recognition
from services.evaluation.db.ruleset_store import sync_rulesets
from services.registry.db.seed import region_rows, upsert_regions_stmt
from shared.db import make_session_factory
from tests.harness import engine_for, settings, truncate_schema

RULESETS = Path(__file__).parent / "rulesets"
SERVICES = ("registry", "evaluation", "notification", "finance")


@pytest.fixture(autouse=True)
def _title_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZJTX_EVAL_TITLE_RULES_DIR", str(RULESETS / "title_rules"))


@pytest.fixture
async def engines() -> AsyncIterator[dict[str, AsyncEngine]]:
    out = {name: engine_for(name) for name in SERVICES}
    for name, eng in out.items():
        await truncate_schema(eng, name)
    async with out["registry"].begin() as conn:
        await conn.execute(upsert_regions_stmt(), region_rows())
    yield out
    for eng in out.values():
        await eng.dispose()


@pytest.fixture
async def sfs(engines: dict[str, AsyncEngine]) -> dict[str, async_sessionmaker[AsyncSession]]:
    out = {name: make_session_factory(eng) for name, eng in engines.items()}
    await sync_rulesets(out["evaluation"], RULESETS)
    return out


@pytest.fixture
def bootstrap() -> str:
    return settings("registry").kafka_bootstrap


async def rows(engine: AsyncEngine, sql: str, **params: Any) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(text(sql), params)).mappings().all())


async def one(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()


async def eval_enterprise(
    sf: async_sessionmaker[AsyncSession], uscc: str, region: str = "330110", *, year: int | None = None,
    title_from: date | None = None,
) -> Any:
    """An enterprise known to evaluation, eligible under A-srdi (revenue, R&D, both lists clear), optionally
    holding a valid province 专精特新 title from ``title_from``; returns the title's id."""
    import uuid

    async with sf() as s, s.begin():
        s.add(Enterprise(uscc=uscc, name="杭州余杭精工科技有限公司", region_code=region, status="active", version=1))
        s.add(IndicatorReport(
            uscc=uscc, year=year or date.today().year - 1, revision=1, region_code=region,
            indicators={"operating_revenue": "60000000.00", "rd_expense": "3600000.00",
                        "abnormal_operation": False, "serious_dishonesty": False},
        ))
        if title_from is None:
            return None
        rid = uuid.uuid4()
        s.add(Recognition(
            id=rid, uscc=uscc, region_code=region, tier="srdi", level="province", ruleset_id="A-srdi",
            batch_year=title_from.year, announced_on=title_from, valid_from=title_from,
            valid_to=date(title_from.year + 3, title_from.month, title_from.day), status="active",
        ))
        return rid


async def latest_eval(sf: async_sessionmaker[AsyncSession], uscc: str, ruleset: str = "A-srdi") -> Any:
    from services.evaluation.db.models import Evaluation

    async with sf() as s:
        return (await s.execute(
            select(Evaluation).where(Evaluation.uscc == uscc, Evaluation.ruleset_id == ruleset)
            .order_by(Evaluation.created_at.desc()).limit(1)
        )).scalar_one_or_none()
