"""从高不重复 and upgrade worked cases end to end in the DB; racing duplicate deliveries."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from services.finance.db import policies as policy_repo
from tests.finance.util import apply_recognised, entitlements_of, new_uscc, recognised, seed
from tests.harness import running_service, runtime_of


async def test_srdi_then_little_giant_two_years_later(gateway) -> None:  # type: ignore[no-untyped-def]
    async with running_service("finance") as (app, _):
        sf = runtime_of(app).session_factory
        await seed(sf)
        uscc = new_uscc("330110")
        await apply_recognised(sf, recognised(uscc, "330110", "srdi", "province", 2024))
        await apply_recognised(sf, recognised(uscc, "330110", "little_giant", "national", 2026))
        got = {(e.jurisdiction, e.year): e for e in await entitlements_of(sf, uscc)}
        assert got[("330100", 2024)].amount == Decimal("500000.00")
        city = got[("330100", 2026)]
        assert city.amount == Decimal("1500000.00")
        assert city.explanation["rule"] == "upgrade_pay_difference" and city.explanation["deducted"] == "500000.00"
        assert got[("330110", 2026)].amount == Decimal("300000.00")  # 余杭 configured 500k − 200k
        assert got[("330000", 2026)].amount == Decimal("300000.00")  # province has no 省级专精特新 reward
        assert ("330000", 2024) not in got
        # a later lower title pays nothing (从高不重复), but is recorded with its explanation
        await apply_recognised(sf, recognised(uscc, "330110", "single_champion_product", None, 2027))
        later = {(e.jurisdiction, e.year): e for e in await entitlements_of(sf, uscc)}
        assert later[("330100", 2027)].amount == 0 and later[("330100", 2027)].status == "nothing_due"
        assert later[("330100", 2027)].explanation["rule"] == "highest_only_not_higher"


async def test_upgrade_nothing_and_migrated_in(gateway) -> None:  # type: ignore[no-untyped-def]
    async with running_service("finance") as (app, _):
        sf = runtime_of(app).session_factory
        data = next(p for p in policy_repo.load_seed_file() if p["id"] == "330100-tier-reward-2022")
        async with sf() as s, s.begin():
            await policy_repo.upsert_policy(s, data | {"upgrade": "nothing"})
            await policy_repo.upsert_policy(
                s, next(p for p in policy_repo.load_seed_file() if p["id"] == "330109-tier-reward-2022")
            )
        uscc = new_uscc("330109")
        await apply_recognised(sf, recognised(uscc, "330109", "srdi", "province", 2023))
        await apply_recognised(sf, recognised(uscc, "330109", "little_giant", "national", 2025))
        got = {(e.jurisdiction, e.year): e for e in await entitlements_of(sf, uscc)}
        assert got[("330100", 2025)].amount == 0 and got[("330100", 2025)].explanation["rule"] == "upgrade_nothing"
        assert got[("330109", 2025)].amount == Decimal("300000.00")  # 萧山 pays the difference
        # 萧山's plan ends 2025-12-31: a 2026 recognition gets nothing from it (dated policies)
        late = new_uscc("330109")
        await apply_recognised(sf, recognised(late, "330109", "srdi", "province", 2026))
        assert {e.jurisdiction for e in await entitlements_of(sf, late)} == {"330100"}
        # migrated in: the city treats it as new, 萧山's policy excludes it
        moved = new_uscc("330109")
        await apply_recognised(sf, recognised(moved, "330109", "srdi", "province", 2025, migrated_in=True))
        got = {e.jurisdiction: e for e in await entitlements_of(sf, moved)}
        assert got["330100"].amount == Decimal("500000.00")
        assert got["330109"].amount == 0 and got["330109"].explanation["rule"] == "migrated_in_excluded"


async def test_racing_duplicate_deliveries_create_one_entitlement_per_policy(gateway) -> None:  # type: ignore[no-untyped-def]
    async with running_service("finance") as (app, _):
        sf = runtime_of(app).session_factory
        await seed(sf)
        uscc = new_uscc("330110")
        events = [
            recognised(uscc, "330110", "little_giant", "national", 2026, recognition_id="R-same") for _ in range(3)
        ]
        await asyncio.gather(*(apply_recognised(sf, e) for e in events))
        rows = await entitlements_of(sf, uscc)
        assert sorted(e.jurisdiction for e in rows) == ["330000", "330100", "330110"]
