"""Demo data: idempotent, fast, valid, and spread so that every tier has qualifiers and near misses."""

from __future__ import annotations

import time
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncEngine

from services.registry.demo import TARGETS, generate_enterprise_rows, load_demo, load_indicators
from services.registry.domain.uscc import validate_uscc
from tests.harness import settings
from tests.registry.conftest import scalar


async def test_load_demo_idempotent_and_plausible(clean: AsyncEngine) -> None:
    started = time.perf_counter()
    await load_demo(settings("registry"), size=2000)
    assert await scalar(clean, "SELECT count(*) FROM registry.indicator_revisions") == 0  # a later step's
    await load_indicators(settings("registry"), size=2000)  # (after evaluation's history)
    elapsed = time.perf_counter() - started
    assert elapsed < 20, f"demo load took {elapsed:.1f}s"
    n = await scalar(clean, "SELECT count(*) FROM registry.enterprises")
    assert n == 2000
    # one report per enterprise: the latest year's
    assert await scalar(clean, "SELECT count(*) FROM registry.indicator_revisions") == 2000
    assert await scalar(clean, "SELECT count(*) FROM registry.outbox WHERE type LIKE '%registered%'") == 2000
    assert await scalar(clean, "SELECT count(*) FROM registry.targets") == len(TARGETS)
    outbox = await scalar(clean, "SELECT count(*) FROM registry.outbox")
    await load_demo(settings("registry"), size=2000)
    await load_indicators(settings("registry"), size=2000)
    assert await scalar(clean, "SELECT count(*) FROM registry.enterprises") == 2000
    assert await scalar(clean, "SELECT count(*) FROM registry.outbox") == outbox
    regions = await scalar(clean, "SELECT count(DISTINCT region_code) FROM registry.enterprises")
    assert regions == 12  # 余杭, 萧山 and the 10 units of 丽水 (incl. the zone)
    # srdi gates (revenue ≥ 1000万, R&D ≥ 100万 and ≥ 3%): qualifiers and near misses on the latest year
    ratio = "(values->>'rd_expense')::numeric / (values->>'operating_revenue')::numeric"
    latest = "year = (SELECT max(year) FROM registry.indicator_revisions)"
    qualifiers = await scalar(
        clean,
        f"SELECT count(*) FROM registry.indicator_revisions WHERE {latest} AND "
        f"(values->>'operating_revenue')::numeric >= 10000000 AND "
        f"(values->>'rd_expense')::numeric >= 1000000 AND {ratio} >= 0.03",
    )
    near = await scalar(
        clean,
        f"SELECT count(*) FROM registry.indicator_revisions WHERE {latest} AND {ratio} >= 0.025 AND {ratio} < 0.03",
    )
    giants = await scalar(
        clean,
        f"SELECT count(*) FROM registry.indicator_revisions WHERE {latest} AND "
        f"(values->>'operating_revenue')::numeric >= 100000000 AND {ratio} >= 0.03",
    )
    assert qualifiers > 300 and near > 50 and giants > 50, (qualifiers, near, giants)
    pools = await scalar(clean, "SELECT count(*) FROM registry.pool_memberships")
    assert pools > 500


def test_import_rows_generator() -> None:
    rows = generate_enterprise_rows(500)
    assert rows[0][0] == "统一社会信用代码" and len(rows) == 501
    assert len({r[0] for r in rows[1:]}) == 500
    for r in rows[1:]:
        validate_uscc(r[0])
        assert Decimal(r[6]) > 0
