"""Separation of duties (issue 16 item 1): the admin configures (policies, budget requests) but takes no step in a
payment; the same person cannot create and approve an entitlement, approve and resend its payment, request and
approve a budget change, or draft and publish a policy. A matrix of role × action, each on fresh objects."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.finance.util import money, new_uscc, seed
from tests.harness import auth, running_service, runtime_of

J = "330109"  # 萧山: the jurisdiction every object of the matrix belongs to
USCC = new_uscc(J)
ROLES: dict[str, dict[str, str]] = {
    "admin": auth("admin", "330000", sub="sys-admin"),
    "province": auth("province_official", "330000"),
    "city": auth("city_official", "330100"),
    "county": auth("county_official", J),
    "enterprise": auth("enterprise", J, uscc=USCC),
    "commissioner": auth("commissioner", J),
    "agency": auth("agency", "330000"),
}
MAKER = auth("county_official", J, sub="xs-maker")  # the other official of the jurisdiction who prepared the object

POLICY = {
    "name": "测试定额奖励",
    "jurisdiction": J,
    "fund": "sme_development",
    "kind": "fixed_award",
    "effective_from": "2026-01-01",
    "items": {"测试项目": "1000.00"},
}
BUDGET = {"jurisdiction": J, "fund": "digital_transformation", "year": 2026, "amount": "1000.00"}

# action → expected status per role (201/200 allowed, 403 wrong role or not of the jurisdiction, 404 not found)
EXPECTED: dict[str, dict[str, int]] = {
    "create_policy": {
        "admin": 201, "province": 201, "city": 201, "county": 201, "enterprise": 403, "commissioner": 403, "agency": 403
    },
    "publish_policy": {
        "admin": 200, "province": 200, "city": 200, "county": 200, "enterprise": 403, "commissioner": 403, "agency": 403
    },
    "request_budget": {
        "admin": 201, "province": 201, "city": 201, "county": 201, "enterprise": 403, "commissioner": 403, "agency": 403
    },
    "approve_budget": {
        "admin": 403, "province": 403, "city": 403, "county": 200, "enterprise": 403, "commissioner": 403, "agency": 403
    },
    "apply": {
        "admin": 403, "province": 201, "city": 201, "county": 201, "enterprise": 201, "commissioner": 403, "agency": 403
    },
    "approve_entitlement": {
        "admin": 403, "province": 403, "city": 403, "county": 200, "enterprise": 403, "commissioner": 403, "agency": 403
    },
    "reject_entitlement": {
        "admin": 403, "province": 403, "city": 403, "county": 200, "enterprise": 403, "commissioner": 403, "agency": 403
    },
    "cancel_entitlement": {
        "admin": 403, "province": 403, "city": 403, "county": 200, "enterprise": 403, "commissioner": 403, "agency": 403
    },
    "retry_disbursement": {
        "admin": 403, "province": 404, "city": 404, "county": 404, "enterprise": 403, "commissioner": 403, "agency": 403
    },
    "repaid_recovery": {
        "admin": 403, "province": 404, "city": 404, "county": 404, "enterprise": 403, "commissioner": 403, "agency": 403
    },
}  # fmt: skip


def _application(ref: str) -> dict[str, Any]:
    return {
        "uscc": USCC,
        "region_code": J,
        "policy_id": "330109-digital-2022",
        "project_ref": ref,
        "year": 2026,
        "figures": {"approved_amount": "1000.00"},
    }


async def _created(r: httpx.Response) -> str:
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _actions(client: httpx.AsyncClient) -> dict[str, Callable[[str, dict[str, str]], Awaitable[httpx.Response]]]:
    async def create_policy(tag: str, who: dict[str, str]) -> httpx.Response:
        return await client.post("/api/v1/policies", json=POLICY | {"id": f"{J}-sod-{tag}"}, headers=who)

    async def publish_policy(tag: str, who: dict[str, str]) -> httpx.Response:
        await _created(await client.post("/api/v1/policies", json=POLICY | {"id": f"{J}-pub-{tag}"}, headers=MAKER))
        return await client.post(f"/api/v1/policies/{J}-pub-{tag}/publish", headers=who)

    async def request_budget(tag: str, who: dict[str, str]) -> httpx.Response:
        return await client.post("/api/v1/budgets", json=BUDGET, headers=money(who))

    async def approve_budget(tag: str, who: dict[str, str]) -> httpx.Response:
        cid = await _created(await client.post("/api/v1/budgets", json=BUDGET, headers=money(MAKER)))
        return await client.post(f"/api/v1/budgets/changes/{cid}/approve", headers=money(who))

    async def apply(tag: str, who: dict[str, str]) -> httpx.Response:
        return await client.post("/api/v1/entitlements/applications", json=_application(tag), headers=money(who))

    async def _pending(tag: str) -> str:
        return await _created(
            await client.post("/api/v1/entitlements/applications", json=_application(tag), headers=money(MAKER))
        )

    async def approve_entitlement(tag: str, who: dict[str, str]) -> httpx.Response:
        return await client.post(f"/api/v1/entitlements/{await _pending(tag)}/approve", headers=money(who))

    async def reject_entitlement(tag: str, who: dict[str, str]) -> httpx.Response:
        eid = await _pending(tag)
        return await client.post(f"/api/v1/entitlements/{eid}/reject", json={"reason": "测试"}, headers=money(who))

    async def cancel_entitlement(tag: str, who: dict[str, str]) -> httpx.Response:
        eid = await _pending(tag)
        return await client.post(f"/api/v1/entitlements/{eid}/cancel", json={"reason": "测试"}, headers=money(who))

    async def retry_disbursement(tag: str, who: dict[str, str]) -> httpx.Response:
        return await client.post(f"/api/v1/disbursements/{uuid.uuid4()}/retry", headers=money(who))

    async def repaid_recovery(tag: str, who: dict[str, str]) -> httpx.Response:
        return await client.post(f"/api/v1/recoveries/{uuid.uuid4()}/repaid", headers=money(who))

    return {
        "create_policy": create_policy,
        "publish_policy": publish_policy,
        "request_budget": request_budget,
        "approve_budget": approve_budget,
        "apply": apply,
        "approve_entitlement": approve_entitlement,
        "reject_entitlement": reject_entitlement,
        "cancel_entitlement": cancel_entitlement,
        "retry_disbursement": retry_disbursement,
        "repaid_recovery": repaid_recovery,
    }


async def test_role_by_action_matrix(gateway) -> None:  # type: ignore[no-untyped-def]
    async with running_service("finance") as (app, client):
        await seed(runtime_of(app).session_factory, {(J, "digital_transformation", 2026): "10000000.00"})
        actions = _actions(client)
        wrong: list[str] = []
        for action, expected in EXPECTED.items():
            for role, status in expected.items():
                r = await actions[action](f"{action}-{role}", ROLES[role])
                if r.status_code != status:
                    wrong.append(f"{role} × {action}: {r.status_code} (expected {status}) {r.text[:120]}")
                elif status == 403:
                    assert r.headers["content-type"].startswith("application/problem+json")
                    assert any("\u4e00" <= ch <= "\u9fff" for ch in r.json()["detail"]), r.text
        assert wrong == [], "\n".join(wrong)


@pytest.mark.parametrize(
    "step",
    ["create_and_approve", "create_and_reject", "request_and_approve_budget", "draft_and_publish"],
)
async def test_the_same_person_cannot_take_both_steps(gateway, step: str) -> None:  # type: ignore[no-untyped-def]
    async with running_service("finance") as (app, client):
        await seed(runtime_of(app).session_factory, {(J, "digital_transformation", 2026): "10000000.00"})
        me = auth("county_official", J, sub="xs-same-person")
        if step == "create_and_approve":
            eid = await _created(
                await client.post("/api/v1/entitlements/applications", json=_application("S1"), headers=money(me))
            )
            r = await client.post(f"/api/v1/entitlements/{eid}/approve", headers=money(me))
            reason = "创建人"
        elif step == "create_and_reject":
            eid = await _created(
                await client.post("/api/v1/entitlements/applications", json=_application("S2"), headers=money(me))
            )
            r = await client.post(f"/api/v1/entitlements/{eid}/reject", json={"reason": "x"}, headers=money(me))
            reason = "创建人"
        elif step == "request_and_approve_budget":
            cid = await _created(await client.post("/api/v1/budgets", json=BUDGET, headers=money(me)))
            r = await client.post(f"/api/v1/budgets/changes/{cid}/approve", headers=money(me))
            reason = "申请人"
            # still pending: nothing allocated by the maker alone
            listed = await client.get("/api/v1/budgets/changes", params={"status": "pending"}, headers=me)
            assert [c["id"] for c in listed.json()] == [cid]
        else:
            await _created(await client.post("/api/v1/policies", json=POLICY | {"id": f"{J}-mine"}, headers=me))
            r = await client.post(f"/api/v1/policies/{J}-mine/publish", headers=me)
            reason = "起草人"
        assert r.status_code in (403, 409), r.text
        assert reason in r.json()["detail"]


async def test_budget_change_is_pending_until_a_second_official_approves(gateway) -> None:  # type: ignore[no-untyped-def]
    async with running_service("finance") as (_app, client):
        r = await client.post("/api/v1/budgets", json=BUDGET | {"amount": "5000.00"}, headers=money(MAKER))
        assert r.status_code == 201 and r.json()["status"] == "pending" and r.json()["budget"] is None
        cid = r.json()["id"]
        listed = await client.get("/api/v1/budgets", params={"jurisdiction": J}, headers=ROLES["county"])
        assert listed.json() == []  # nothing allocated yet
        r = await client.post(f"/api/v1/budgets/changes/{cid}/approve", headers=money(ROLES["county"]))
        assert r.status_code == 200, r.text
        assert r.json()["decided_by"] == "county_official:330109" and r.json()["budget"]["total"] == "5000.00"
        r = await client.post(
            f"/api/v1/budgets/changes/{cid}/approve", headers=money(auth("county_official", J, sub="c"))
        )
        assert r.status_code == 409
        # another jurisdiction's official does not see it
        r = await client.post(
            f"/api/v1/budgets/changes/{cid}/approve", headers=money(auth("county_official", "330110"))
        )
        assert r.status_code == 404
