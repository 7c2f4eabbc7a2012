"""Fixtures of the evaluation tests: a clean schema with the test rule sets stored."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.evaluation.db.models import Enterprise, IndicatorReport, Recognition, backbone
from services.evaluation.db.ruleset_store import sync_rulesets
from services.evaluation.events.contracts import PUBLISHED
from shared.db import make_session_factory
from tests.harness import engine_for, truncate_schema

TEST_RULESETS = Path(__file__).parent / "rulesets"


def new_uscc(region: str = "330110") -> str:
    return "91" + region + uuid.uuid4().hex[:10].upper()


@pytest.fixture(autouse=True)
def _test_title_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test rule sets decide province 专精特新 and national 小巨人 titles (rulesets/title_rules)."""
    monkeypatch.setenv("ZJTX_EVAL_TITLE_RULES_DIR", str(TEST_RULESETS / "title_rules"))


@pytest.fixture
async def engine() -> AsyncIterator[AsyncEngine]:
    eng = engine_for("evaluation")
    await truncate_schema(eng, "evaluation")
    yield eng
    try:
        await assert_outbox_fits_contracts(eng)
    finally:
        await eng.dispose()


async def assert_outbox_fits_contracts(eng: AsyncEngine) -> None:
    """Every event a test made evaluation write is one its contract (``events/contracts.PUBLISHED``) builds:
    the type is declared, the payload validates (no unknown or missing field) and dumps back unchanged."""
    ob = backbone.outbox
    async with eng.connect() as conn:
        rows = (await conn.execute(select(ob.c.type, ob.c.payload).order_by(ob.c.seq))).all()
    for event_type, payload in rows:
        model = PUBLISHED.get(event_type)
        assert model is not None, f"{event_type} has no producer contract"
        assert model.model_validate(payload).model_dump(mode="json") == payload, event_type


@pytest.fixture
async def sf(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    factory = make_session_factory(engine)
    await sync_rulesets(factory, TEST_RULESETS)
    return factory


async def add_enterprise(
    sf: async_sessionmaker[AsyncSession],
    region: str = "330110",
    revenue: str = "60000000",
    rd: str = "3000000",
    year: int | None = None,
    uscc: str | None = None,
) -> str:
    uscc = uscc or new_uscc(region)
    async with sf() as s, s.begin():
        s.add(Enterprise(uscc=uscc, name="测试企业", region_code=region, status="active", version=1))
        s.add(
            IndicatorReport(
                uscc=uscc,
                year=year or date.today().year - 1,
                revision=1,
                region_code=region,
                indicators={"operating_revenue": revenue, "rd_expense": rd},
            )
        )
    return uscc


async def add_title(
    sf: async_sessionmaker[AsyncSession], uscc: str, tier: str, valid_from: date, valid_to: date,
    region: str = "330110", level: str = "province",
) -> uuid.UUID:
    rid = uuid.uuid4()
    async with sf() as s, s.begin():
        s.add(
            Recognition(
                id=rid, uscc=uscc, region_code=region, tier=tier, level=level, batch_year=valid_from.year,
                announced_on=valid_from, valid_from=valid_from, valid_to=valid_to, status="active",
            )
        )
    return rid


async def outbox(sf: async_sessionmaker[AsyncSession], event_type: str, subject: str | None = None) -> list[Any]:
    ob = backbone.outbox
    q = select(ob.c.payload).where(ob.c.type == event_type).order_by(ob.c.seq)
    if subject is not None:
        q = q.where(ob.c.key == subject)
    async with sf() as s:
        return [r.payload for r in (await s.execute(q)).all()]


async def count(sf: async_sessionmaker[AsyncSession], model: Any, *where: Any) -> int:
    async with sf() as s:
        return int((await s.execute(select(func.count()).select_from(model).where(*where))).scalar() or 0)


D = Decimal
