"""Jurisdiction is computed from the region tree, never from string patterns (issue 16 item 5).

The HTTP layer refuses a malformed ``region`` claim (tests/shared/test_http_claims.py); here the check is bypassed
on purpose: the repositories are called directly with a principal whose region is a LIKE pattern, and nothing
outside the jurisdiction may come back (an unknown code covers nothing)."""

from __future__ import annotations

from datetime import date

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.registry.db import enterprises as ents
from services.registry.db import targets as targets_repo
from services.registry.db.models import Enterprise
from services.registry.db.regions import region_cond
from shared.auth import Principal, Role
from shared.db import make_session_factory
from shared.problems import Problem
from tests.registry.helpers import LIANDU, XIAOSHAN, YUHANG, register

PATTERNS = ["33%", "__0000", "33%%00", "3301%", "%", "_", "", "33", "3301", "330110%", "33011_"]


@pytest.mark.parametrize("role", [Role.COUNTY, Role.CITY, Role.PROVINCE])
async def test_like_patterns_as_region_see_nothing(client: httpx.AsyncClient, clean: AsyncEngine, role: Role) -> None:
    await register(client, 1, YUHANG)
    await register(client, 2, XIAOSHAN)
    await register(client, 3, LIANDU)
    factory = make_session_factory(clean)
    async with factory() as s:
        for region in PATTERNS:
            who = Principal(sub=f"attacker:{region}", role=role, region=region)
            page, _ = await ents.list_enterprises(s, who, ents.ListFilter(), None, 100)
            assert page == [], (region, [e.uscc for e in page])
            assert await targets_repo.recognised_counts(s, region, date.today()) == []
            assert await targets_repo.pool_counts(s, region, date.today().year, date.today()) == []
            assert await targets_repo.within(s, region, None) == []
            assert (await s.scalars(select(Enterprise).where(region_cond(Enterprise.region_code, region)))).all() == []

        # the genuine codes still see theirs: the county only itself, the city its counties, the province all
        def who(region: str) -> Principal:
            return Principal(sub="o", role=role, region=region)

        def codes(page: list[Enterprise]) -> list[str]:
            return sorted(e.region_code for e in page)

        assert codes((await ents.list_enterprises(s, who(YUHANG), ents.ListFilter(), None, 100))[0]) == [YUHANG]
        assert codes((await ents.list_enterprises(s, who("330100"), ents.ListFilter(), None, 100))[0]) == [
            XIAOSHAN, YUHANG]
        assert len((await ents.list_enterprises(s, who("330000"), ents.ListFilter(), None, 100))[0]) == 3

        # a pattern as the ?region= filter never reaches SQL either: 422 naming the field
        for region in ("33%", "__0000", "3301__"):
            with pytest.raises(Problem) as err:
                ents.list_conditions(who("330000"), ents.ListFilter(region=region))
            assert err.value.status == 422
            assert "region" in str(err.value.errors)
