"""从高不重复 and upgrade worked cases end to end in the DB; racing duplicate deliveries."""

from __future__ import annotations

import asyncio
from datetime import date
from decimal import Decimal

from sqlalchemy import select

from services.finance.app.entitlements import apply_due_deferrals
from services.finance.db import policies as policy_repo
from services.finance.db.models import backbone
from shared.events.envelope import CloudEvent
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
        # migrated in and operating here for over a year: the city treats it as new, 萧山's policy excludes it
        moved = new_uscc("330109")
        event = recognised(
            moved,
            "330109",
            "srdi",
            "province",
            2025,
            migrated_in=True,
            moved_in_on=date(2024, 6, 1),
            arrived_on=date(2025, 9, 1),
        )
        await apply_recognised(sf, event)
        got = {e.jurisdiction: e for e in await entitlements_of(sf, moved)}
        assert got["330100"].amount == Decimal("500000.00") and got["330100"].explanation["rule"] == "tier_reward"
        assert "已在本地正常经营满一年" in " ".join(got["330100"].explanation["steps"])
        assert got["330109"].amount == 0 and got["330109"].explanation["rule"] == "migrated_in_excluded"


async def test_migrated_in_needs_a_year_of_operation_here(gateway) -> None:  # type: ignore[no-untyped-def]
    """Issue 15 item 3: a move event (migrated_in, moved_in_on) is rewarded only after a year here; before that
    nothing is recorded (the reason is audited) so the event that arrives once the year is up creates it."""
    async with running_service("finance") as (app, _):
        sf = runtime_of(app).session_factory
        await seed(sf)
        moved = new_uscc("330110")

        def move_event(arrived_on: date) -> CloudEvent:
            return recognised(
                moved,
                "330110",
                "srdi",
                "province",
                2026,
                recognition_id="R-moved",
                migrated_in=True,
                moved_in_on=date(2026, 3, 1),
                arrived_on=arrived_on,
            )

        await apply_recognised(sf, move_event(date(2026, 9, 1)))
        assert await entitlements_of(sf, moved) == []
        async with sf() as s:
            deferred = (
                await s.execute(
                    select(backbone.audit_log).where(
                        backbone.audit_log.c.action == "entitlement.deferred", backbone.audit_log.c.object_id == moved
                    )
                )
            ).all()
        assert deferred and "未满一年" in " ".join(deferred[0].after["steps"])
        # without a moving date the condition cannot be checked: nothing is paid on trust
        unknown = new_uscc("330110")
        await apply_recognised(sf, recognised(unknown, "330110", "srdi", "province", 2026, migrated_in=True))
        assert await entitlements_of(sf, unknown) == []
        # finance keeps it and rewards it on the day the year here is complete, not before (a redelivery of the
        # event does not keep it twice)
        await apply_recognised(sf, move_event(date(2026, 9, 2)))
        async with sf() as s, s.begin():
            assert await apply_due_deferrals(s, date(2027, 2, 28)) == 0
        assert await entitlements_of(sf, moved) == []
        async with sf() as s, s.begin():
            assert await apply_due_deferrals(s, date(2027, 3, 1)) == 1
        async with sf() as s, s.begin():
            assert await apply_due_deferrals(s, date(2027, 3, 2)) == 0
        got = {e.jurisdiction: e for e in await entitlements_of(sf, moved)}
        assert got["330100"].amount == Decimal("500000.00")
        assert "2026-03-01 迁入" in " ".join(got["330100"].explanation["steps"])


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
