"""Separation of duties in the recognition workflow (issue 16 item 1): the admin manages configuration (rule sets)
but takes no step in a recognition (submit, review, objections, announcement, withdrawal: 403 with a Chinese
reason); the same person (``sub``) takes at most one review step of one application and never reviews what they
submitted. A matrix of role × action, each on a fresh application."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.evaluation.conftest import add_enterprise
from tests.harness import auth, running_service

J = "330110"
COUNTY = auth("county_official", J, sub="county-330110-a")
CITY = auth("city_official", "330100", sub="city-330100-a")
PROVINCE = auth("province_official", "330000", sub="province-330000-a")
CHINESE = re.compile(r"[\u4e00-\u9fff]")

ROLES: dict[str, Callable[[str], dict[str, str]]] = {
    "admin": lambda _: auth("admin", "330000", sub="sys-admin"),
    "province": lambda _: auth("province_official", "330000", sub="province-330000-z"),
    "city": lambda _: auth("city_official", "330100", sub="city-330100-z"),
    "county": lambda _: auth("county_official", J, sub="county-330110-z"),
    "enterprise": lambda uscc: auth("enterprise", J, uscc=uscc),
    "commissioner": lambda _: auth("commissioner", J, sub="cm-unassigned"),
    "agency": lambda _: auth("agency", "330000", sub="agency-x"),
}

# action → expected status per role (2xx allowed; 403 wrong role or admin; 404 not theirs to see)
EXPECTED: dict[str, dict[str, int]] = {
    "submit": {"admin": 403, "province": 403, "city": 403, "county": 201, "enterprise": 201,
               "commissioner": 403, "agency": 403},
    "review_county": {"admin": 403, "province": 403, "city": 403, "county": 200, "enterprise": 403,
                      "commissioner": 404, "agency": 403},
    "review_city": {"admin": 403, "province": 403, "city": 200, "county": 403, "enterprise": 403,
                    "commissioner": 404, "agency": 403},
    "review_province": {"admin": 403, "province": 200, "city": 403, "county": 403, "enterprise": 403,
                        "commissioner": 404, "agency": 403},
    "lodge_objection": {"admin": 403, "province": 201, "city": 201, "county": 201, "enterprise": 403,
                        "commissioner": 403, "agency": 403},
    "resolve_objection": {"admin": 403, "province": 200, "city": 403, "county": 403, "enterprise": 403,
                          "commissioner": 404, "agency": 403},
    "announce": {"admin": 403, "province": 200, "city": 403, "county": 403, "enterprise": 403,
                 "commissioner": 404, "agency": 403},
    "withdraw": {"admin": 403, "province": 403, "city": 403, "county": 200, "enterprise": 200,
                 "commissioner": 404, "agency": 403},
    "revoke": {"admin": 403, "province": 200, "city": 403, "county": 403, "enterprise": 403,
               "commissioner": 403, "agency": 403},
}


async def _submit(client: httpx.AsyncClient, uscc: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    r = await client.post("/api/v1/applications", json={"uscc": uscc, "tier": "srdi", "batch_year": 2026},
                          headers=headers or auth("enterprise", J, uscc=uscc))
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def _review(client: httpx.AsyncClient, app_id: str, stage: str, headers: dict[str, str]) -> httpx.Response:
    return await client.post(f"/api/v1/applications/{app_id}/reviews",
                             json={"stage": stage, "decision": "approved", "comment": f"{stage} 同意"},
                             headers=headers)


async def _advance(client: httpx.AsyncClient, app_id: str, stages: list[str]) -> dict[str, Any]:
    who = {"county": COUNTY, "city": CITY, "province": PROVINCE}
    body: dict[str, Any] = {}
    for stage in stages:
        r = await _review(client, app_id, stage, who[stage])
        assert r.status_code == 200, r.text
        body = r.json()
    return body


Action = Callable[[httpx.AsyncClient, str, dict[str, str]], Awaitable[httpx.Response]]


async def _act(action: str, client: httpx.AsyncClient, uscc: str, headers: dict[str, str]) -> httpx.Response:
    """Prepare a fresh application in the state ``action`` needs (by other officials) and take it as ``headers``."""
    if action == "submit":
        return await client.post("/api/v1/applications", json={"uscc": uscc, "tier": "srdi", "batch_year": 2026},
                                 headers=headers)
    app = await _submit(client, uscc)
    if action.startswith("review_"):
        stage = action.removeprefix("review_")
        await _advance(client, app["id"], ["county", "city", "province"][: ["county", "city", "province"].index(stage)])
        return await _review(client, app["id"], stage, headers)
    if action == "withdraw":
        return await client.post(f"/api/v1/applications/{app['id']}/withdraw", json={"comment": "撤回"},
                                 headers=headers)
    view = await _advance(client, app["id"], ["county", "city", "province"])
    assert view["state"] == "publicity"
    if action == "lodge_objection":
        return await client.post(f"/api/v1/applications/{app['id']}/objections", json={"content": "数据存疑"},
                                 headers=headers)
    if action == "resolve_objection":
        r = await client.post(f"/api/v1/applications/{app['id']}/objections", json={"content": "数据存疑"},
                              headers=COUNTY)
        assert r.status_code == 201, r.text
        return await client.post(f"/api/v1/applications/{app['id']}/objections/{r.json()['id']}/resolve",
                                 json={"outcome": "dismissed", "resolution": "经核实不成立"}, headers=headers)
    day = date.fromisoformat(view["publicity_ends_on"]) + timedelta(days=1)
    if action == "revoke":
        r = await client.post(f"/api/v1/applications/{app['id']}/announce", json={"announced_on": day.isoformat()},
                              headers=PROVINCE)
        assert r.status_code == 200, r.text
        recs = (await client.get(f"/api/v1/enterprises/{uscc}/recognitions", headers=PROVINCE)).json()
        rec_id = next(x["id"] for x in (*recs["current"], *recs["upcoming"]) if x["status"] == "active")
        return await client.post(f"/api/v1/recognitions/{rec_id}/revoke",
                                 json={"ground": "data_fraud", "evidence": "抽查发现申报数据不实"}, headers=headers)
    assert action == "announce"
    return await client.post(f"/api/v1/applications/{app['id']}/announce",
                             json={"announced_on": day.isoformat()}, headers=headers)


@pytest.mark.parametrize("action", list(EXPECTED))
async def test_role_action_matrix(sf: async_sessionmaker[AsyncSession], action: str) -> None:
    got: dict[str, int] = {}
    async with running_service("evaluation") as (_, client):
        for role, token in ROLES.items():
            uscc = await add_enterprise(sf, J)
            r = await _act(action, client, uscc, token(uscc))
            got[role] = r.status_code
            if r.status_code == 403:
                assert CHINESE.search(r.json()["detail"]), r.text
            if role == "admin":
                assert "管理员" in r.json()["detail"], r.text
    assert got == EXPECTED[action]


async def test_one_person_one_review_step(sf: async_sessionmaker[AsyncSession]) -> None:
    """The same ``sub`` (say, an official moved from the county to the city office) cannot review twice."""
    async with running_service("evaluation") as (_, client):
        uscc = await add_enterprise(sf, J)
        app = await _submit(client, uscc)
        assert (await _review(client, app["id"], "county", auth("county_official", J, sub="li"))).status_code == 200
        r = await _review(client, app["id"], "city", auth("city_official", "330100", sub="li"))
        assert r.status_code == 403 and "同一人员" in r.json()["detail"], r.text
        other = auth("city_official", "330100", sub="wang")
        assert (await _review(client, app["id"], "city", other)).status_code == 200
        # province recommends, the same province official may not record the national result (little giant)
        giant = await add_enterprise(sf, J)
        app = await client.post("/api/v1/applications",
                                json={"uscc": giant, "tier": "little_giant", "batch_year": 2026},
                                headers=auth("enterprise", J, uscc=giant))
        assert app.status_code == 201, app.text
        await _advance(client, app.json()["id"], ["county", "city", "province"])
        r = await _review(client, app.json()["id"], "national", PROVINCE)
        assert r.status_code == 403 and "省级审核" in r.json()["detail"], r.text
        view = (await client.get(f"/api/v1/applications/{app.json()['id']}", headers=PROVINCE)).json()
        assert view["state"] == "province_recommended"  # nothing changed


async def test_submitter_does_not_review(sf: async_sessionmaker[AsyncSession]) -> None:
    async with running_service("evaluation") as (_, client):
        uscc = await add_enterprise(sf, J)
        nominator = auth("county_official", J, sub="county-330110-nominator")
        app = await _submit(client, uscc, nominator)
        assert app["nominated"] is True
        r = await _review(client, app["id"], "county", nominator)
        assert r.status_code == 403 and "提交" in r.json()["detail"], r.text
        # after a return, whoever resubmitted it does not review it either
        assert (await client.post(f"/api/v1/applications/{app['id']}/reviews",
                                  json={"stage": "county", "decision": "returned", "comment": "补充材料"},
                                  headers=COUNTY)).status_code == 200
        resubmitter = auth("county_official", J, sub="county-330110-clerk")
        r = await client.post(f"/api/v1/applications/{app['id']}/resubmit", json={"comment": "已补充"},
                              headers=resubmitter)
        assert r.status_code == 200, r.text
        r = await _review(client, app["id"], "county", resubmitter)
        assert r.status_code == 403, r.text
        # the same county reviewer may take the county step again after the return (the same step)
        assert (await _review(client, app["id"], "county", COUNTY)).status_code == 200
