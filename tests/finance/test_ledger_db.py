"""Random operation sequences against the real service and DB: the ledger always balances and matches budgets."""

from __future__ import annotations

import random

from services.finance.app import payments
from tests.finance.util import (
    FAST,
    allocate_via_api,
    apply_recognised,
    apply_revoked,
    assert_ledger_consistent,
    money,
    new_uscc,
    recognised,
    revoked,
)
from tests.harness import auth, running_service, runtime_of

CITY = auth("city_official", "330100")
MAKER = auth("city_official", "330100", sub="city-budget-maker")


async def test_random_sequences_keep_ledger_balanced(gateway) -> None:  # type: ignore[no-untyped-def]
    async with running_service("finance") as (app, client):
        sf = runtime_of(app).session_factory
        from tests.finance.util import seed

        await seed(sf)
        gw = payments.GatewayClient(gateway.url, FAST.timeout)
        rng = random.Random(20261122)
        ents: list[tuple[str, str, str]] = []  # (entitlement id, uscc, recognition id)
        alloc = {"jurisdiction": "330100", "fund": "sme_development", "year": 2026, "amount": "3000000.00"}
        first = await client.post("/api/v1/budgets", json=alloc, headers=MAKER | {"Idempotency-Key": "alloc-1"})
        again = await client.post("/api/v1/budgets", json=alloc, headers=MAKER | {"Idempotency-Key": "alloc-1"})
        assert first.status_code == 201 and again.json() == first.json()  # replayed, not requested twice
        assert first.json()["status"] == "pending"
        r = await client.post(f"/api/v1/budgets/changes/{first.json()['id']}/approve", headers=money(CITY))
        assert r.status_code == 200 and r.json()["budget"]["total"] == "3000000.00"
        for _step in range(60):
            op = rng.choice(
                ["recognise", "recognise", "approve", "approve", "cancel", "pay", "revoke", "allocate", "repay"]
            )
            if op == "recognise":
                uscc, rid = new_uscc("330110"), f"R-{rng.random()}"
                tier = rng.choice([("srdi", "province"), ("little_giant", "national"), ("single_champion", None)])
                await apply_recognised(sf, recognised(uscc, "330110", tier[0], tier[1], 2026, recognition_id=rid))
                r = await client.get(
                    "/api/v1/entitlements", params={"uscc": uscc, "jurisdiction": "330100"}, headers=CITY
                )
                ents.extend((e["id"], uscc, rid) for e in r.json())
            elif op == "allocate":
                amount = f"{rng.randint(1, 3000000)}.{rng.randint(0, 99):02d}"
                body = {"jurisdiction": "330100", "fund": "sme_development", "year": 2026, "amount": amount}
                await allocate_via_api(client, body, MAKER, CITY)
            elif op == "pay":
                await payments.drain(sf, gw, FAST)
            elif op == "repay":
                r = await client.get("/api/v1/recoveries", params={"status": "open"}, headers=CITY)
                for rec in r.json()[:1]:
                    assert (
                        await client.post(f"/api/v1/recoveries/{rec['id']}/repaid", headers=money(CITY))
                    ).status_code == 200
            elif ents:
                eid, uscc, rid = rng.choice(ents)
                if op == "approve":
                    r = await client.post(f"/api/v1/entitlements/{eid}/approve", headers=money(CITY))
                    assert r.status_code in (200, 409), r.text
                elif op == "cancel":
                    r = await client.post(
                        f"/api/v1/entitlements/{eid}/cancel", json={"reason": "测试"}, headers=money(CITY)
                    )
                    assert r.status_code in (200, 409), r.text
                else:
                    paid = (await client.get("/api/v1/entitlements", params={"status": "paid"}, headers=CITY)).json()
                    if paid and rng.random() < 0.7:  # mostly revoke after payment (追回), sometimes before
                        target = rng.choice(paid)["id"]
                        eid, uscc, rid = next(e for e in ents if e[0] == target)
                    await apply_revoked(sf, revoked(uscc, "330110", rid))
            await assert_ledger_consistent(sf)
        r = await client.get("/api/v1/ledger", params={"jurisdiction": "330100", "limit": 0}, headers=CITY)
        assert r.json()["balanced"] is True
        movements = {
            ln["movement"]
            for ln in (
                await client.get("/api/v1/ledger", params={"jurisdiction": "330100", "limit": 5000}, headers=CITY)
            ).json()["lines"]
        }
        assert {"allocate", "reserve", "pay", "recover"} <= movements, (
            movements
        )  # the sequence exercised real movements
        assert gateway.gw.paid_count == len({p["instruction_id"] for p in gateway.gw.payments.values()})
