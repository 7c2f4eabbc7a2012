"""Policies API (officials of the jurisdiction; publishing emits policy.published) and project applications."""

from __future__ import annotations

from sqlalchemy import select

from services.finance.db import policies as policy_repo
from services.finance.db.models import backbone
from services.finance.demo import demo_budgets, load_demo
from tests.finance.util import assert_ledger_consistent, money, new_uscc, seed
from tests.harness import auth, running_service, runtime_of, settings

XS = ("county_official", "330109")


async def test_policy_crud_and_publish_event(gateway) -> None:  # type: ignore[no-untyped-def]
    async with running_service("finance") as (app, client):
        sf = runtime_of(app).session_factory
        body = {
            "id": "330109-test-green",
            "name": "绿色工厂奖励(测试)",
            "jurisdiction": "330109",
            "fund": "green",
            "kind": "fixed_award",
            "effective_from": "2026-01-01",
            "document": "测试文件",
            "items": {"省级绿色工厂": "500000", "国家级绿色工厂": "1000000"},
        }
        r = await client.post("/api/v1/policies", json=body, headers=auth("county_official", "330110"))
        assert r.status_code == 404  # another county's policy
        r = await client.post("/api/v1/policies", json=body | {"amount": "1"}, headers=auth(*XS))
        assert r.status_code == 422
        r = await client.post(
            "/api/v1/policies", json=body, headers=auth("enterprise", "330109", uscc=new_uscc("330109"))
        )
        assert r.status_code == 403
        r = await client.post("/api/v1/policies", json=body, headers=auth(*XS))
        assert r.status_code == 201 and r.json()["status"] == "draft"
        assert r.json()["spec"]["items"]["省级绿色工厂"] == "500000.00"
        r = await client.put(
            "/api/v1/policies/330109-test-green", json=body | {"name": "绿色工厂奖励"}, headers=auth(*XS)
        )
        assert r.status_code == 200 and r.json()["version"] == 2
        # drafts are invisible to enterprises; published ones are public
        ent = auth("enterprise", "330109", uscc=new_uscc("330109"))
        assert (await client.get("/api/v1/policies/330109-test-green", headers=ent)).status_code == 404
        r = await client.post("/api/v1/policies/330109-test-green/publish", headers=auth("city_official", "330100"))
        assert r.status_code == 200 and r.json()["status"] == "published"
        assert (await client.get("/api/v1/policies/330109-test-green", headers=ent)).status_code == 200
        r = await client.put("/api/v1/policies/330109-test-green", json=body, headers=auth(*XS))
        assert r.status_code == 409
        async with sf() as s:
            rows = (
                await s.execute(
                    select(backbone.outbox).where(backbone.outbox.c.type == "zjtx.finance.policy.published.v1")
                )
            ).all()
        assert len(rows) == 1
        p = rows[0].payload
        assert p["policy_id"] == "330109-test-green" and p["jurisdiction"] == "330109" and rows[0].key == "330109"
        assert set(p) == {
            "policy_id",
            "name",
            "jurisdiction",
            "kind",
            "tiers",
            "effective_from",
            "effective_to",
            "summary",
            "fund",
            "rewards",
        }


async def test_project_applications_all_kinds(gateway) -> None:  # type: ignore[no-untyped-def]
    async with running_service("finance") as (app, client):
        sf = runtime_of(app).session_factory
        await seed(sf)
        uscc = new_uscc("330109")
        mk = auth(*XS, sub="maker")

        async def apply(policy: str, ref: str, figures: dict, region: str = "330109", who=mk):  # type: ignore[no-untyped-def,type-arg]
            body = {
                "uscc": uscc,
                "region_code": region,
                "policy_id": policy,
                "project_ref": ref,
                "year": 2026,
                "figures": figures,
            }
            return await client.post("/api/v1/entitlements/applications", json=body, headers=money(who))

        # 首台(套): 10%, capped at 3,000,000 per enterprise across projects
        r1 = await apply("330109-first-set-2022", "FS-1", {"approved_amount": "20000000.00"})
        assert r1.status_code == 201 and r1.json()["amount"] == "2000000.00"
        r2 = await apply("330109-first-set-2022", "FS-2", {"approved_amount": "20000000.00"})
        assert r2.json()["amount"] == "1000000.00" and r2.json()["explanation"]["rule"] == "percentage_capped"
        # 海外研发 (province policy covers 萧山): needs > 10,000,000 investment, 5%, cap 5,000,000
        r = await apply("330000-overseas-rd-2022", "RD-1", {"approved_amount": "10000000.00"})
        assert r.json()["amount"] == "0.00" and r.json()["status"] == "nothing_due"
        r = await apply("330000-overseas-rd-2022", "RD-2", {"approved_amount": "30000000.00"})
        assert r.json()["amount"] == "1500000.00" and r.json()["jurisdiction"] == "330000"
        # fixed award
        r = await apply("330109-factory-awards-2022", "F-1", {"item": "省级未来工厂"})
        assert r.json()["amount"] == "3000000.00"
        r = await apply("330109-factory-awards-2022", "F-2", {"item": "不存在的项目"})
        assert r.status_code == 422
        # per-person training subsidy (city policy, paid to the training institution)
        r = await apply("330100-skills-training-2022", "T-1", {"persons": {"新培养技师": 10, "高级技师": 2}})
        assert r.json()["amount"] == "38000.00"
        # a 余杭 policy does not cover a 萧山 enterprise
        r = await apply("330110-tier-reward-2022", "X", {"approved_amount": "1.00"})
        assert r.status_code == 422
        # tier rewards come from recognition events, not applications
        r = await apply("330100-tier-reward-2022", "X", {"approved_amount": "1.00"})
        assert r.status_code == 422
        # an enterprise may apply for itself (creator = the enterprise user), not for others
        own = auth("enterprise", "330109", uscc=uscc, sub="ent-user")
        r = await apply("330109-digital-2022", "D-1", {"approved_amount": "500000.00"}, who=own)
        assert r.status_code == 201 and r.json()["amount"] == "100000.00"
        r = await client.post(
            "/api/v1/entitlements/applications",
            json={
                "uscc": new_uscc("330109"),
                "region_code": "330109",
                "policy_id": "330109-digital-2022",
                "project_ref": "Z",
                "year": 2026,
                "figures": {"approved_amount": "1.00"},
            },
            headers=money(own),
        )
        assert r.status_code == 403
        r = await client.get("/api/v1/entitlements", headers=own)
        assert {e["uscc"] for e in r.json()} == {uscc}
        r = await client.get("/api/v1/entitlements", headers=auth("county_official", "330110"))
        assert r.json() == []


async def test_demo_loader_is_idempotent(gateway) -> None:  # type: ignore[no-untyped-def]
    await load_demo(settings("finance"), 10)
    await load_demo(settings("finance"), 10)
    async with running_service("finance") as (app, client):
        r = await client.get("/api/v1/budgets", headers=auth("province_official", "330000"))
        budgets = r.json()
        assert len(budgets) == len({(b["jurisdiction"], b["fund"], b["year"]) for b in budgets})
        assert {"330000", "330100", "330109", "330110", "331100", "331102", "331181"} <= {
            b["jurisdiction"] for b in budgets
        }
        r = await client.get("/api/v1/policies", headers=auth("county_official", "330109"))
        ids = {p["id"] for p in r.json()}
        assert {"330100-tier-reward-2022", "330109-first-set-2022", "330000-overseas-rd-2022"} <= ids
        xs = next(p for p in r.json() if p["id"] == "330109-tier-reward-2022")
        assert xs["spec"]["amounts_configured"] is True
        r = await client.get("/api/v1/budgets", headers=auth("county_official", "330109"))
        assert {b["jurisdiction"] for b in r.json()} == {"330109"}
        await assert_ledger_consistent(runtime_of(app).session_factory)


async def test_demo_seed_announces_new_policies_once(gateway) -> None:  # type: ignore[no-untyped-def]
    await load_demo(settings("finance"), 10)
    await load_demo(settings("finance"), 10)
    async with running_service("finance") as (app, _), runtime_of(app).session_factory() as s:
        rows = (await s.execute(select(backbone.outbox.c.type, backbone.outbox.c.payload))).all()
    policies = [r.payload for r in rows if r.type == "zjtx.finance.policy.published.v1"]
    assert len(policies) == len(policy_repo.load_seed_file())
    city = next(p for p in policies if p["policy_id"] == "330100-tier-reward-2022")
    assert {"tier": "srdi", "level": "province", "amount": "500000.00"} in city["rewards"]
    # each demo budget is announced once (budget.changed, for the monitor's budget per jurisdiction and fund)
    budgets = [r.payload for r in rows if r.type == "zjtx.finance.budget.changed.v1"]
    assert len(budgets) == len(demo_budgets(10)) == len({(b["jurisdiction"], b["fund"], b["year"]) for b in budgets})


async def test_openapi_and_problem_json(gateway) -> None:  # type: ignore[no-untyped-def]
    async with running_service("finance") as (_, client):
        spec = (await client.get("/openapi.json")).json()
        for path in (
            "/api/v1/policies",
            "/api/v1/budgets",
            "/api/v1/entitlements/{entitlement_id}/approve",
            "/api/v1/disbursements",
            "/api/v1/ledger",
            "/api/v1/enterprises/{uscc}/entitlements",
            "/api/v1/reconciliations",
        ):
            assert path in spec["paths"], path
        for path, ops in spec["paths"].items():  # every finance route has a response model
            if not path.startswith("/api/v1/") or path.startswith("/api/v1/contracts/"):
                continue  # (a contract is served as application/schema+json, see shared/events/http.py)
            for method, op in ops.items():
                ok = next(v for k, v in op["responses"].items() if k.startswith("2"))
                assert ok.get("content", {}).get("application/json", {}).get("schema"), (method, path)
        r = await client.get("/api/v1/entitlements")
        assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")
        r = await client.post("/api/v1/entitlements/not-a-uuid/approve", headers=money(auth(*XS)))
        assert r.status_code == 422
