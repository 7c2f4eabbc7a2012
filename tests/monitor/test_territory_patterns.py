"""Monitor reports and the feed select a region's rows by the region tree, never by a LIKE pattern (issue 16
item 5): even called directly (the HTTP layer's 6-digit check bypassed), a pattern as the region reads nothing."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.monitor.db import archive
from services.monitor.db import reporting as q
from shared.db import make_session_factory
from tests.monitor.conftest import event


async def test_patterns_read_nothing_and_codes_read_their_tree(clean: AsyncEngine) -> None:
    async with clean.begin() as conn:
        await conn.execute(text(
            "INSERT INTO monitor.pool_members (uscc, level, pool_region, track, year, region_code, active) "
            "VALUES (:u, 'county', :r, 'srdi', 2025, :r, true)"),
            [{"u": "91330110MA0000015C", "r": "330110"}, {"u": "91331102MA0000031U", "r": "331102"},
             {"u": "91331199MA0000041X", "r": "331199"}])  # the last in 丽水's programme zone
    async with make_session_factory(clean)() as s:
        for pattern in ("33%", "__0000", "33%%00", "%", "3301%", "", "33", "3311"):
            assert await q.pool(s, pattern, 2025) == [], pattern
        assert {r["region_code"] for r in await q.pool(s, "330000", 2025)} == {"330110", "331102", "331199"}
        assert {r["region_code"] for r in await q.pool(s, "330100", 2025)} == {"330110"}
        assert {r["region_code"] for r in await q.pool(s, "331100", 2025)} == {"331102", "331199"}
        assert {r["region_code"] for r in await q.pool(s, "330110", 2025)} == {"330110"}


async def test_feed_patterns_read_nothing(clean: AsyncEngine) -> None:
    factory = make_session_factory(clean)
    async with factory() as s, s.begin():
        await archive.append(s, [
            event("zjtx.registry.enterprise.registered.v1", f"9133{n:014d}", region, {"region_code": region})
            for n, region in enumerate(("330110", "331102", "331199"))
        ])
    async with factory() as s:
        for pattern in ("33%", "__0000", "33%%00", "%", "3301%", "", "33", "3311"):
            assert await archive.page(s, after=0, limit=100, territory=pattern) == [], pattern

        async def codes(territory: str | None) -> set[str | None]:
            return {r["region_code"] for r in await archive.page(s, after=0, limit=100, territory=territory)}

        assert await codes("331100") == {"331102", "331199"}
        assert await codes("330100") == {"330110"}
        assert await codes(None) == {"330110", "331102", "331199"}
