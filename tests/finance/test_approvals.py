"""Approval: maker-checker, Idempotency-Key retries, budget concurrency (50 concurrent approvals), reject/cancel."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from services.finance.db.models import DisbursementRow, LedgerLine
from tests.finance.util import budget, money, new_uscc, seed
from tests.harness import auth, running_service, runtime_of

XS = ("county_official", "330109")


def application(uscc: str, ref: str, amount: str = "1000000.00", policy: str = "330109-digital-2022") -> dict[str, Any]:
    return {
        "uscc": uscc,
        "region_code": "330109",
        "policy_id": policy,
        "project_ref": ref,
        "year": 2026,
        "figures": {"approved_amount": amount},
    }


async def test_maker_checker_and_jurisdiction(gateway) -> None:  # type: ignore[no-untyped-def]
    async with running_service("finance") as (app, client):
        sf = runtime_of(app).session_factory
        await seed(sf, {("330109", "digital_transformation", 2026): "10000000.00"})
        uscc = new_uscc("330109")
        maker = auth(*XS, sub="official-a")
        r = await client.post("/api/v1/entitlements/applications", json=application(uscc, "DX-1"), headers=money(maker))
        assert r.status_code == 201, r.text
        ent = r.json()
        assert ent["amount"] == "200000.00" and ent["created_by"] == "official-a"
        eid = ent["id"]
        r = await client.post(f"/api/v1/entitlements/{eid}/approve", headers=money(maker))
        assert r.status_code == 403 and "创建人" in r.json()["detail"]
        r = await client.post(
            f"/api/v1/entitlements/{eid}/approve", headers=money(auth("enterprise", "330109", uscc=uscc))
        )
        assert r.status_code == 403
        r = await client.post(
            f"/api/v1/entitlements/{eid}/approve", headers=money(auth("county_official", "330110", sub="yuhang"))
        )
        assert r.status_code == 404
        r = await client.post(f"/api/v1/entitlements/{eid}/approve", headers=money(auth(*XS, sub="official-b")))
        assert r.status_code == 200 and r.json()["decided_by"] == "official-b"
        r = await client.post(f"/api/v1/entitlements/{eid}/approve", headers=money(auth(*XS, sub="official-c")))
        assert r.status_code == 409
        # duplicate project under the same business key is impossible
        r = await client.post("/api/v1/entitlements/applications", json=application(uscc, "DX-1"), headers=money(maker))
        assert r.status_code == 409
        # mass assignment of amount/status is refused
        bad = application(uscc, "DX-2") | {"amount": "99999999.00"}
        r = await client.post("/api/v1/entitlements/applications", json=bad, headers=money(maker))
        assert r.status_code == 422


async def test_same_approval_post_retried_with_idempotency_key(gateway) -> None:  # type: ignore[no-untyped-def]
    async with running_service("finance") as (app, client):
        sf = runtime_of(app).session_factory
        await seed(sf, {("330109", "digital_transformation", 2026): "10000000.00"})
        r = await client.post(
            "/api/v1/entitlements/applications",
            json=application(new_uscc("330109"), "P1"),
            headers=money(auth(*XS, sub="a")),
        )
        eid = r.json()["id"]
        checker = auth(*XS, sub="b") | {"Idempotency-Key": "approve-P1"}
        first = await client.post(
            f"/api/v1/entitlements/{eid}/approve", headers=money(checker), json={"comment": "同意"}
        )
        again = await asyncio.gather(
            *(
                client.post(f"/api/v1/entitlements/{eid}/approve", headers=money(checker), json={"comment": "同意"})
                for _ in range(3)
            )
        )
        assert first.status_code == 200
        for r in again:
            assert r.status_code == 200 and r.json() == first.json()
            assert r.headers.get("Idempotent-Replayed") == "true"
        async with sf() as s:
            assert (await s.execute(select(func.count()).select_from(DisbursementRow))).scalar_one() == 1
            n = (
                await s.execute(select(func.count()).select_from(LedgerLine).where(LedgerLine.movement == "reserve"))
            ).scalar_one()
            assert n == 2
        b = await budget(sf, "330109", "digital_transformation", 2026)
        assert b.reserved == Decimal("200000.00")
        # the same key with a different body is refused; a new key gets the real state (409 already approved)
        r = await client.post(f"/api/v1/entitlements/{eid}/approve", headers=money(checker), json={"comment": "改"})
        assert r.status_code == 422
        r = await client.post(
            f"/api/v1/entitlements/{eid}/approve", headers=money(auth(*XS, sub="b") | {"Idempotency-Key": "other"})
        )
        assert r.status_code == 409


async def test_fifty_concurrent_approvals_never_overdraw(gateway) -> None:  # type: ignore[no-untyped-def]
    async with running_service("finance") as (app, client):
        sf = runtime_of(app).session_factory
        # 20 × 200,000 fit in 4,100,000; the 21st and later must be refused
        await seed(sf, {("330109", "digital_transformation", 2026): "4100000.00"})
        ids = []
        for i in range(50):
            r = await client.post(
                "/api/v1/entitlements/applications",
                json=application(new_uscc("330109"), f"C{i}"),
                headers=money(auth(*XS, sub="maker")),
            )
            ids.append(r.json()["id"])
        results = await asyncio.gather(
            *(
                client.post(f"/api/v1/entitlements/{eid}/approve", headers=money(auth(*XS, sub=f"checker-{i % 3}")))
                for i, eid in enumerate(ids)
            )
        )
        codes = [r.status_code for r in results]
        assert codes.count(200) == 20 and codes.count(409) == 30
        refused = next(r for r in results if r.status_code == 409).json()
        assert refused["remaining"] == "100000.00" and "预算不足" in refused["detail"]
        b = await budget(sf, "330109", "digital_transformation", 2026)
        assert b.reserved == Decimal("4000000.00") and b.reserved + b.spent <= b.total


async def test_reject_and_cancel_release_budget(gateway) -> None:  # type: ignore[no-untyped-def]
    async with running_service("finance") as (app, client):
        sf = runtime_of(app).session_factory
        await seed(sf, {("330109", "digital_transformation", 2026): "1000000.00"})
        mk = auth(*XS, sub="a")
        ck = auth(*XS, sub="b")
        e1 = (
            await client.post(
                "/api/v1/entitlements/applications", json=application(new_uscc("330109"), "R1"), headers=money(mk)
            )
        ).json()["id"]
        e2 = (
            await client.post(
                "/api/v1/entitlements/applications", json=application(new_uscc("330109"), "R2"), headers=money(mk)
            )
        ).json()["id"]
        r = await client.post(f"/api/v1/entitlements/{e1}/reject", json={"reason": "材料不全"}, headers=money(ck))
        assert r.status_code == 200 and r.json()["status"] == "rejected"
        assert (await client.post(f"/api/v1/entitlements/{e2}/approve", headers=money(ck))).status_code == 200
        assert (await budget(sf, "330109", "digital_transformation", 2026)).reserved == Decimal("200000.00")
        r = await client.post(f"/api/v1/entitlements/{e2}/cancel", json={"reason": "企业放弃"}, headers=money(ck))
        assert (
            r.status_code == 200
            and r.json()["status"] == "cancelled"
            and r.json()["disbursement"]["state"] == "cancelled"
        )
        b = await budget(sf, "330109", "digital_transformation", 2026)
        assert b.reserved == 0 and b.spent == 0
        r = await client.get("/api/v1/ledger", params={"jurisdiction": "330109"}, headers=ck)
        assert r.json()["balanced"] and r.json()["totals"][0]["accounts"]["available"]["balance"] == "1000000.00"
