"""Every route of finance's OpenAPI, walked with each role of a foreign identity (issue 16 "a generated test walks
every route of every service's OpenAPI"), as ``tests/registry/test_route_matrix.py`` does for registry.

Two counties hold real data: 萧山 (杭州) has a draft policy, a pending budget change, a pending entitlement of its
enterprise B and an approved one with its disbursement; 莲都 (丽水) has enterprise A. Each identity on the 丽水 side
(莲都 county and 丽水 city officials, enterprise A, A's commissioner, a 丽水 agency) calls every route with 萧山's
objects in the path and 萧山 in the query: a route naming 萧山's data answers 404 or 403, a list shows none of it
(published policies are public documents and may be listed), a write changes nothing (no audit row, no ledger
line), and no answer is a 5xx. A new route is walked without editing this file; one the walk cannot fill fails
until it is given values here. The owner (萧山's official) reads every route with the same values (200)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.finance.util import money, new_uscc, seed
from tests.harness import auth, fill_path, openapi_routes, running_service, runtime_of, walk_as

XS, LIANDU = "330109", "331102"
B = new_uscc(XS)
A = new_uscc(LIANDU)
MAKER = auth("county_official", XS, sub="xs-maker")
CHECKER = auth("county_official", XS, sub="xs-checker")
DRAFT = f"{XS}-route-matrix-draft"
POLICY = {
    "name": "萧山测试定额奖励(草案)",
    "jurisdiction": XS,
    "fund": "sme_development",
    "kind": "fixed_award",
    "effective_from": "2026-01-01",
    "items": {"测试项目": "1000.00"},
}
BUDGET = {"jurisdiction": XS, "fund": "digital_transformation", "year": 2026, "amount": "1000.00"}

PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/api/v1/contracts"),
    ("GET", "/api/v1/contracts/{event_type}"),
}
ADMIN_ONLY = {("GET", "/api/v1/admin/outbox/parked")}
# a new reconciliation of the gateway's statement for a day: the caller's own run, naming nobody's data
OWN_CREATION = {("POST", "/api/v1/reconciliations")}
# published policies are public documents: listed to everyone, a draft only to its jurisdiction
PUBLISHED_OK = {("GET", "/api/v1/policies")}

IDENTITIES = {
    "county_official 莲都": auth("county_official", LIANDU, sub="ld-county"),
    "city_official 丽水": auth("city_official", "331100", sub="ls-city"),
    "enterprise A": auth("enterprise", LIANDU, uscc=A),
    "commissioner of A": auth("commissioner", LIANDU, sub="cm-ld"),
    "agency 丽水": auth("agency", "331100", sub="丽水市税务局"),
}


def _application(ref: str) -> dict[str, Any]:
    return {"uscc": B, "region_code": XS, "policy_id": "330109-digital-2022", "project_ref": ref, "year": 2026,
            "figures": {"approved_amount": "1000.00"}}


async def _created(r: httpx.Response) -> str:
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def world(client: httpx.AsyncClient, sf: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    await seed(sf, {(XS, "digital_transformation", 2026): "10000000.00"})
    r = await client.post("/api/v1/policies", json=POLICY | {"id": DRAFT}, headers=MAKER)
    assert r.status_code == 201, r.text
    change = await _created(await client.post("/api/v1/budgets", json=BUDGET, headers=money(MAKER)))
    pending = await _created(await client.post("/api/v1/entitlements/applications", json=_application("RM-1"),
                                               headers=money(MAKER)))
    approved = await _created(await client.post("/api/v1/entitlements/applications", json=_application("RM-2"),
                                                headers=money(MAKER)))
    r = await client.post(f"/api/v1/entitlements/{approved}/approve", headers=money(CHECKER))
    assert r.status_code == 200, r.text
    async with sf() as s:
        disbursement = (await s.execute(text("SELECT id FROM finance.disbursements LIMIT 1"))).scalar()
    assert disbursement is not None
    # no recovery without a paid entitlement later revoked: an unknown id (404 to everyone but its jurisdiction)
    return {"change": change, "pending": pending, "approved": approved,
            "disbursement": str(disbursement), "recovery": str(uuid.uuid4())}


def path_values(w: dict[str, Any]) -> dict[str, str]:
    return {"uscc": B, "policy_id": DRAFT, "change_id": w["change"], "entitlement_id": w["pending"],
            "disbursement_id": w["disbursement"], "recovery_id": w["recovery"]}


def bodies() -> dict[tuple[str, str], Any]:
    """A valid body per write route (so the call reaches the authorisation, not the validation)."""
    return {
        ("POST", "/api/v1/policies"): POLICY | {"id": f"{XS}-route-matrix-foreign"},
        ("PUT", "/api/v1/policies/{policy_id}"): POLICY | {"name": "越权修改的政策"},
        ("POST", "/api/v1/policies/{policy_id}/publish"): None,
        ("POST", "/api/v1/budgets"): BUDGET,
        ("POST", "/api/v1/budgets/changes/{change_id}/approve"): None,
        ("POST", "/api/v1/budgets/changes/{change_id}/reject"): {"reason": "越权驳回"},
        ("POST", "/api/v1/entitlements/applications"): _application("RM-foreign"),
        ("POST", "/api/v1/entitlements/{entitlement_id}/approve"): {},
        ("POST", "/api/v1/entitlements/{entitlement_id}/reject"): {"reason": "越权驳回"},
        ("POST", "/api/v1/entitlements/{entitlement_id}/cancel"): {"reason": "越权撤销"},
        ("POST", "/api/v1/disbursements/{disbursement_id}/retry"): None,
        ("POST", "/api/v1/recoveries/{recovery_id}/repaid"): None,
    }




def query(op: dict[str, Any]) -> dict[str, Any]:
    names = {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
    return {k: v for k, v in {"jurisdiction": XS, "uscc": B, "year": 2026}.items() if k in names}


async def state(sf: async_sessionmaker[AsyncSession]) -> tuple[Any, ...]:
    async with sf() as s:
        async def one(sql: str) -> Any:
            return (await s.execute(text(sql))).scalar()

        return (
            await one("SELECT count(*) FROM finance.audit_log"),
            await one("SELECT count(*) FROM finance.ledger_lines"),
            await one("SELECT string_agg(status, ',' ORDER BY id) FROM finance.entitlements"),
            await one("SELECT string_agg(status, ',' ORDER BY id) FROM finance.budget_changes"),
            await one("SELECT string_agg(status || name, ',' ORDER BY id) FROM finance.policies"),
        )


def _leaks(w: dict[str, Any], body: str, published: bool) -> bool:
    own = [B, w["change"], w["pending"], w["approved"], DRAFT]
    if not published:
        own.append(XS)
    return any(x in body for x in own)


@pytest.mark.parametrize("who", list(IDENTITIES))
async def test_foreign_identity_gets_nothing_of_another_county(gateway, who: str) -> None:  # type: ignore[no-untyped-def]
    headers = IDENTITIES[who]
    async with running_service("finance") as (app, client):
        sf = runtime_of(app).session_factory
        w = await world(client, sf)
        spec = (await client.get("/openapi.json")).json()
        values, writes = path_values(w), bodies()
        before = await state(sf)
        leaks: list[str] = []
        walked = await walk_as(client, spec, PUBLIC | OWN_CREATION, values, writes, query, headers, money(headers))
        for method, path, answers in walked:
            for r in answers:
                assert r.status_code < 500, (who, method, path, r.status_code, r.text)
                if (method, path) in ADMIN_ONLY:
                    ok = r.status_code == 403
                elif method == "GET" and "{" not in path:
                    ok = r.status_code in (403, 404) or (
                        r.status_code == 200 and not _leaks(w, r.text, (method, path) in PUBLISHED_OK))
                else:
                    ok = r.status_code in (403, 404)
                if not ok:
                    leaks.append(f"{method} {path} -> {r.status_code} {r.text[:160]}")
        assert leaks == [], f"{who}:\n" + "\n".join(leaks)
        assert len(walked) >= 20
        assert await state(sf) == before, "a refused write changed something"


async def test_the_owner_reads_every_route_with_the_same_values(gateway) -> None:  # type: ignore[no-untyped-def]
    """Control: 萧山's official gets 200 where the foreign identities got 404 (the values are valid)."""
    async with running_service("finance") as (app, client):
        w = await world(client, runtime_of(app).session_factory)
        spec = (await client.get("/openapi.json")).json()
        values = path_values(w)
        for method, path, op in openapi_routes(spec):
            if method != "GET" or (method, path) in PUBLIC | ADMIN_ONLY:
                continue
            r = await client.get(fill_path(path, values), params=query(op), headers=CHECKER)
            assert r.status_code == 200, (path, r.status_code, r.text)
