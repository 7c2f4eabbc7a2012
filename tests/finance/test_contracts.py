"""Finance's event contracts (issue 12: PUBLISHED/CONSUMED; issue 14: what the monitor read models need):
every payload finance writes to its outbox validates against its producer model, entitlement events carry the
region, tier, level, year, fund and amount, and an approved budget change publishes ``budget.changed``."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select

from services.finance.events import contracts as ev
from services.finance.events.handlers import HANDLERS
from shared.events.catalog import EVENT_TYPES
from tests.finance.util import allocate_via_api, apply_recognised, new_uscc, recognised, seed
from tests.harness import auth, running_service, runtime_of


def test_every_type_has_a_contract() -> None:
    assert set(HANDLERS) == set(ev.CONSUMED)
    assert all(t.startswith("zjtx.finance.") for t in ev.PUBLISHED)
    assert set(ev.PUBLISHED) <= EVENT_TYPES and set(ev.CONSUMED) <= EVENT_TYPES
    for model in ev.PUBLISHED.values():
        assert model.model_config.get("extra") == "forbid", model
    for model in ev.CONSUMED.values():
        assert model.model_config.get("extra") == "ignore", model


def test_recognised_reader_accepts_move_events() -> None:
    base = {"recognition_id": "R", "uscc": "x", "region_code": "330110", "tier": "srdi", "batch_year": 2026}
    moved = ev.TierRecognised.model_validate(base | {"migrated_in": True, "moved_in_on": "2025-03-01", "new": 1})
    assert moved.migrated_in and moved.moved_in_on == date(2025, 3, 1)
    for alias in ("migrated_on", "moved_on"):  # the names a producer may use for the day of the move
        assert ev.TierRecognised.model_validate(base | {alias: "2025-03-01"}).moved_in_on == date(2025, 3, 1)


async def _outbox(sf: Any) -> list[tuple[str, dict[str, Any]]]:
    from services.finance.db.models import backbone

    async with sf() as s:
        rows = (await s.execute(select(backbone.outbox.c.type, backbone.outbox.c.payload))).all()
    return [(r.type, r.payload) for r in rows]


async def test_payloads_match_the_producer_models(gateway) -> None:  # type: ignore[no-untyped-def]
    async with running_service("finance") as (app, client):
        sf = runtime_of(app).session_factory
        await seed(sf, {("330110", "sme_development", 2026): "10000000.00"})
        maker, checker = auth("city_official", "330100", sub="hz-1"), auth("city_official", "330100", sub="hz-2")
        body = {"jurisdiction": "330100", "fund": "sme_development", "year": 2026, "amount": "8000000.00"}
        change = await allocate_via_api(client, body, maker, checker)
        uscc = new_uscc("330110")
        await apply_recognised(sf, recognised(uscc, "330110", "little_giant", "national", 2026))

        events = await _outbox(sf)
        for event_type, payload in events:
            model: type[BaseModel] = ev.PUBLISHED[event_type]
            model.model_validate(payload)  # extra="forbid": nothing the contract does not declare

        budget = [p for t, p in events if t == ev.BUDGET_CHANGED]
        assert budget == [
            {
                "change_id": change["id"],
                "jurisdiction": "330100",
                "fund": "sme_development",
                "year": 2026,
                "amount": "8000000.00",
                "total": "8000000.00",
                "reserved": "0.00",
                "spent": "0.00",
                "available": "8000000.00",
                "requested_by": "hz-1",
                "approved_by": "hz-2",
            }
        ]
        created = {p["jurisdiction"]: p for t, p in events if t == ev.ENTITLEMENT_CREATED}
        city = created["330100"]
        assert (city["region_code"], city["tier"], city["level"], city["year"]) == (
            "330110",
            "little_giant",
            "national",
            2026,
        )
        assert city["amount"] == "2000000.00" and city["fund"] == "sme_development" and city["status"] == "pending"
        published = [p for t, p in events if t == ev.POLICY_PUBLISHED]
        assert published == []  # seeding upserts without announcing; the API publish is tested elsewhere
