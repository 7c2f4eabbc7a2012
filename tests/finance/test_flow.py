"""Recognition → entitlements in county, city and province → approve → pay → ledger, budget, enterprise view."""

from __future__ import annotations

from decimal import Decimal

from services.finance.app import payments
from tests.finance.util import (
    FAST,
    apply_recognised,
    budget,
    entitlements_of,
    money,
    new_uscc,
    pay_lines,
    recognised,
    seed,
)
from tests.harness import auth, running_service, runtime_of

BUDGETS = {
    ("330100", "sme_development", 2026): "10000000.00",
    ("330110", "sme_development", 2026): "10000000.00",
    ("330000", "sme_development", 2026): "10000000.00",
}


async def test_recognition_to_payment_end_to_end(gateway) -> None:  # type: ignore[no-untyped-def]
    async with running_service("finance", payment_gateway_url=gateway.url) as (app, client):
        sf = runtime_of(app).session_factory
        await seed(sf, BUDGETS)
        uscc = new_uscc("330110")
        await apply_recognised(sf, recognised(uscc, "330110", "little_giant", "national", 2026))
        rows = await entitlements_of(sf, uscc)
        by_j = {r.jurisdiction: r for r in rows}
        # county 余杭 (configured amount, flagged), city programme 330100, province (demo configuration)
        assert set(by_j) == {"330000", "330100", "330110"}
        assert by_j["330100"].amount == Decimal("2000000.00")
        assert by_j["330110"].explanation["amounts_configured"] is True
        assert by_j["330100"].explanation["steps"]
        city_ent = by_j["330100"]

        # enterprise sees its own entitlements, amounts as 2-place strings; another enterprise sees nothing
        r = await client.get(
            f"/api/v1/enterprises/{uscc}/entitlements", headers=auth("enterprise", "330110", uscc=uscc)
        )
        assert r.status_code == 200 and {e["amount"] for e in r.json()} >= {"2000000.00"}
        other = new_uscc()
        r = await client.get(
            f"/api/v1/enterprises/{uscc}/entitlements", headers=auth("enterprise", "330110", uscc=other)
        )
        assert r.status_code == 404
        r = await client.get("/api/v1/entitlements", headers=auth("enterprise", "330110", uscc=other))
        assert r.json() == []

        # a county official cannot approve the city's entitlement (404 outside jurisdiction)
        r = await client.post(
            f"/api/v1/entitlements/{city_ent.id}/approve", headers=money(auth("county_official", "330110"))
        )
        assert r.status_code == 404
        r = await client.post(
            f"/api/v1/entitlements/{city_ent.id}/approve",
            headers=money(auth("city_official", "330100")),
            json={"comment": "同意"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "approved" and r.json()["disbursement"]["state"] == "pending"
        b = await budget(sf, "330100", "sme_development", 2026)
        assert b.reserved == Decimal("2000000.00")

        gw = payments.GatewayClient(gateway.url, FAST.timeout)
        assert await payments.drain(sf, gw, FAST) == ["paid"]
        assert gateway.gw.paid_count == 1
        b = await budget(sf, "330100", "sme_development", 2026)
        assert (b.reserved, b.spent) == (Decimal("0.00"), Decimal("2000000.00"))
        assert await pay_lines(sf) == 2

        r = await client.get(f"/api/v1/entitlements/{city_ent.id}", headers=auth("enterprise", "330110", uscc=uscc))
        assert r.json()["status"] == "paid" and r.json()["disbursement"]["state"] == "paid"

        r = await client.get(
            "/api/v1/ledger",
            params={"jurisdiction": "330100", "fund": "sme_development", "year": 2026},
            headers=auth("city_official", "330100"),
        )
        body = r.json()
        assert r.status_code == 200 and body["balanced"] is True
        acc = body["totals"][0]["accounts"]
        assert acc["paid"]["balance"] == "2000000.00"
        assert acc["available"]["balance"] == "8000000.00"
        r = await client.get(
            "/api/v1/ledger", params={"jurisdiction": "330100"}, headers=auth("county_official", "330110")
        )
        assert r.status_code == 404

        # daily reconciliation: matches, then a payment the ledger does not know is reported
        day = gateway.gw.payments[next(iter(gateway.gw.payments))]["paid_at"][:10]
        r = await client.post("/api/v1/reconciliations", json={"date": day}, headers=auth("city_official", "330100"))
        assert r.status_code == 201 and r.json()["matched"] == 1 and r.json()["mismatches"] == []
        gateway.gw.extra_statement.append(
            {"key": "unknown-key", "payment_id": "X", "amount": "10.00", "paid_at": day + "T01:00:00+00:00"}
        )
        r = await client.post("/api/v1/reconciliations", json={"date": day}, headers=auth("city_official", "330100"))
        assert [m["kind"] for m in r.json()["mismatches"]] == ["missing_in_ledger"]
