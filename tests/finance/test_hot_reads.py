"""The 企业码 app's hot read of finance (GET /enterprises/{uscc}/entitlements) passes through the JSON PostgreSQL
writes without a session (shared.db_reads): for every kind of caller it must be what the session path
(entitlements.of_enterprise) gives, as list[EntitlementOut] serialises it, with 404 where that path answers 404 —
now also for an official of another territory (it answered 200 [] before)."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.finance.api.schemas import EntitlementOut
from services.finance.app import entitlements as uc
from services.finance.app import payments
from shared.auth import Principal, Role
from shared.problems import Problem
from tests.finance.util import FAST, apply_recognised, entitlements_of, money, new_uscc, recognised, seed
from tests.harness import bearer, officials_and_admin, running_service, runtime_of

BUDGETS = {(j, "sme_development", 2026): "10000000.00" for j in ("330000", "330100", "330110")}
LIST = TypeAdapter(list[EntitlementOut])
CALLERS = officials_and_admin()


async def _reference(sf: async_sessionmaker[AsyncSession], p: Principal, uscc: str) -> list[Any] | None:
    async with sf() as s:
        try:
            return [EntitlementOut.of(e, d).model_dump(mode="json") for e, d in await uc.of_enterprise(s, p, uscc)]
        except Problem as exc:
            assert exc.status == 404
            return None


async def test_entitlements_equal_the_session_path_for_every_caller(gateway) -> None:  # type: ignore[no-untyped-def]
    async with running_service("finance", payment_gateway_url=gateway.url) as (app, client):
        sf = runtime_of(app).session_factory
        await seed(sf, BUDGETS)
        uscc, bare = new_uscc("330110"), new_uscc("330110")
        await apply_recognised(sf, recognised(uscc, "330110", "little_giant", "national", 2026))
        rows = {r.jurisdiction: r for r in await entitlements_of(sf, uscc)}
        assert set(rows) == {"330000", "330100", "330110"}
        for j, who in (("330100", "city 杭州"), ("330110", "county 余杭")):  # two approved, one of them paid
            r = await client.post(f"/api/v1/entitlements/{rows[j].id}/approve", json={"comment": "同意"},
                                  headers=money(bearer(CALLERS[who])))
            assert r.status_code == 200, r.text
            if j == "330100":
                assert await payments.drain(sf, payments.GatewayClient(gateway.url, FAST.timeout), FAST) == ["paid"]
        callers = {**CALLERS, "enterprise itself": Principal(sub="e", role=Role.ENTERPRISE, region="330110",
                                                             uscc=uscc),
                   "another enterprise": Principal(sub="o", role=Role.ENTERPRISE, region="330110", uscc=bare)}
        for who, p in callers.items():
            for target in (uscc, bare):
                r = await client.get(f"/api/v1/enterprises/{target}/entitlements", headers=bearer(p))
                ref = await _reference(sf, p, target)
                if ref is None:
                    assert r.status_code == 404, (who, target, r.text)
                    assert r.headers["content-type"].startswith("application/problem+json")
                    continue
                assert r.status_code == 200 and r.headers["content-type"] == "application/json", (who, r.text)
                fast = LIST.dump_python(LIST.validate_json(r.content), mode="json")
                assert r.json() == fast == LIST.dump_python(LIST.validate_python(ref), mode="json"), who
        own = (await client.get(f"/api/v1/enterprises/{uscc}/entitlements",
                                headers=bearer(callers["enterprise itself"]))).json()
        assert [e["disbursement"] and e["disbursement"]["state"] for e in own].count("paid") == 1
        assert all(e["amount"].endswith(tuple(f".{c:02d}" for c in range(100))) for e in own)
        county = (await client.get(f"/api/v1/enterprises/{uscc}/entitlements",
                                   headers=bearer(CALLERS["county 余杭"]))).json()
        assert [e["jurisdiction"] for e in county] == ["330110"]  # funded by its county only
        for foreign in ("county 萧山", "city 宁波"):  # answered 200 [] before
            r = await client.get(f"/api/v1/enterprises/{uscc}/entitlements", headers=bearer(CALLERS[foreign]))
            assert r.status_code == 404
        assert (await client.get(f"/api/v1/enterprises/{bare}/entitlements",
                                 headers=bearer(callers["another enterprise"]))).json() == []
        r = await client.get(f"/api/v1/enterprises/{uscc}/entitlements",
                             headers=bearer(Principal(sub="cm", role=Role.COMMISSIONER, region="330110")))
        assert r.status_code == 403
