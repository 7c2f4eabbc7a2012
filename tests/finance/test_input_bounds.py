"""Bad money input answers a Chinese 4xx naming the field, never 500 (issue 16 items 8 and 9, issue 15 item 8):
amounts beyond NUMERIC(16,2), a missing Idempotency-Key on a money POST, a fund channel not configured."""

from __future__ import annotations

from typing import Any

import pytest

from tests.finance.util import money, new_uscc, seed
from tests.harness import auth, running_service, runtime_of

XS = auth("county_official", "330109")
CHECKER = auth("county_official", "330109", sub="xs-checker")


def _fields(body: dict[str, Any]) -> set[str]:
    return {e["field"] for e in body.get("errors", [])}


async def test_budget_total_beyond_numeric_precision_is_422(gateway) -> None:  # type: ignore[no-untyped-def]
    async with running_service("finance") as (app, client):
        await seed(runtime_of(app).session_factory, {("330109", "sme_development", 2026): "1000.00"})
        body = {"jurisdiction": "330109", "fund": "sme_development", "year": 2026, "amount": "99999999999999.99"}
        r = await client.post("/api/v1/budgets", json=body, headers=money(XS))
        assert r.status_code == 422, r.text
        assert "amount" in _fields(r.json()) and "上限" in r.json()["detail"]
        for amount in ("999999999999999.99", "1e20", "0.001"):
            r = await client.post("/api/v1/budgets", json=body | {"amount": amount}, headers=money(XS))
            assert r.status_code == 422 and "amount" in _fields(r.json()), (amount, r.text)


async def test_policy_and_application_amounts_beyond_precision_are_422(gateway) -> None:  # type: ignore[no-untyped-def]
    async with running_service("finance") as (app, client):
        await seed(runtime_of(app).session_factory)
        policy = {
            "name": "超大金额",
            "jurisdiction": "330109",
            "fund": "sme_development",
            "kind": "fixed_award",
            "effective_from": "2026-01-01",
            "items": {"大奖": "99999999999999999999.99"},
        }
        r = await client.post("/api/v1/policies", json=policy, headers=XS)
        assert r.status_code == 422 and "items.大奖" in _fields(r.json()), r.text
        r = await client.post("/api/v1/policies", json=policy | {"items": {"大奖": "1e40"}}, headers=XS)
        assert r.status_code == 422, r.text
        # tier keys are the shared tier vocabulary (a typo would never pay)
        tiers = policy | {"kind": "tier_reward", "items": None, "tiers": {"srdi:provnce": "1000.00"}}
        r = await client.post("/api/v1/policies", json=tiers, headers=XS)
        assert r.status_code == 422 and "tiers.srdi:provnce" in _fields(r.json()), r.text
        r = await client.post("/api/v1/policies", json=tiers | {"tiers": {"srdi:province": "1000.00"}}, headers=XS)
        assert r.status_code == 201, r.text
        # 10 × 3,000,000 per person … × 1,000,000 persons would overflow the entitlement amount
        body = {
            "uscc": new_uscc("330100"),
            "region_code": "330100",
            "policy_id": "330100-skills-training-2022",
            "project_ref": "T-big",
            "year": 2026,
            "figures": {"persons": {"新培养技师": 10**12}},
        }
        city = auth("city_official", "330100")
        r = await client.post("/api/v1/entitlements/applications", json=body, headers=money(city))
        assert r.status_code == 422 and any(f.startswith("figures.persons") for f in _fields(r.json())), r.text


@pytest.mark.parametrize(
    "path,body",
    [
        ("/api/v1/budgets", {"jurisdiction": "330109", "fund": "sme_development", "year": 2026, "amount": "1.00"}),
        (
            "/api/v1/entitlements/applications",
            {
                "uscc": "91330109MA2XXXXX0Y",
                "region_code": "330109",
                "policy_id": "330109-digital-2022",
                "project_ref": "K-1",
                "year": 2026,
                "figures": {"approved_amount": "1000.00"},
            },
        ),
        ("/api/v1/entitlements/00000000-0000-0000-0000-000000000000/approve", None),
        ("/api/v1/entitlements/00000000-0000-0000-0000-000000000000/reject", {"reason": "x"}),
        ("/api/v1/entitlements/00000000-0000-0000-0000-000000000000/cancel", {"reason": "x"}),
        ("/api/v1/disbursements/00000000-0000-0000-0000-000000000000/retry", None),
        ("/api/v1/recoveries/00000000-0000-0000-0000-000000000000/repaid", None),
        ("/api/v1/budgets/changes/00000000-0000-0000-0000-000000000000/approve", None),
    ],
)
async def test_money_posts_require_an_idempotency_key(gateway, path: str, body: Any) -> None:  # type: ignore[no-untyped-def]
    async with running_service("finance") as (app, client):
        await seed(runtime_of(app).session_factory)
        for headers in (XS, XS | {"Idempotency-Key": "  "}):
            r = await client.post(path, json=body, headers=headers)
            assert r.status_code == 428, r.text
            assert "Idempotency-Key" in _fields(r.json()) and "幂等键" in r.text


async def test_budget_fund_must_be_a_configured_channel(gateway) -> None:  # type: ignore[no-untyped-def]
    async with running_service("finance") as (_app, client):
        body = {"jurisdiction": "330109", "fund": "black_box", "year": 2026, "amount": "1000.00"}
        r = await client.post("/api/v1/budgets", json=body, headers=money(XS))
        assert r.status_code == 422, r.text
        p = r.json()
        assert "fund" in _fields(p) and "black_box" in p["detail"]
        assert set(p["allowed"]) == {"sme_development", "digital_transformation", "talent"}
        assert "sme_development" in next(e["message"] for e in p["errors"] if e["field"] == "fund")
        r = await client.get("/api/v1/budgets/changes", headers=XS)
        assert r.json() == []  # nothing was written
        r = await client.post("/api/v1/budgets", json=body | {"fund": "talent"}, headers=money(XS))
        assert r.status_code == 201
