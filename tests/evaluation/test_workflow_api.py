"""Recognition workflow through the HTTP API: reviews, publicity, announcement, access, prerequisites,
revocation (incl. the data-fraud cascade and ban), recheck, expiry worker."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.evaluation.app.workers import expire_and_remind
from services.evaluation.db.models import Application, Recognition, backbone
from tests.evaluation.conftest import add_enterprise, add_title, count, outbox
from tests.harness import auth, running_service

COUNTY = auth("county_official", "330110")
CITY = auth("city_official", "330100")
PROVINCE = auth("province_official", "330000")
# a second province official: one person takes one review step (separation of duties, issue 16)
PROVINCE_B = auth("province_official", "330000", sub="province-330000-b")
OTHER_COUNTY = auth("county_official", "330106")


def ent(uscc: str) -> dict[str, str]:
    return auth("enterprise", "330110", uscc=uscc)


async def submit(client: httpx.AsyncClient, uscc: str, tier: str = "srdi", headers: Any = None, **kw: Any) -> Any:
    return await client.post(
        "/api/v1/applications", json={"uscc": uscc, "tier": tier, "batch_year": 2026, **kw},
        headers=headers or ent(uscc),
    )


async def review(client: httpx.AsyncClient, app_id: str, stage: str, headers: Any, decision: str = "approved") -> Any:
    return await client.post(
        f"/api/v1/applications/{app_id}/reviews",
        json={"stage": stage, "decision": decision, "comment": f"{stage} 意见"}, headers=headers,
    )


async def to_publicity(client: httpx.AsyncClient, uscc: str, tier: str = "srdi") -> dict[str, Any]:
    r = await submit(client, uscc, tier)
    assert r.status_code == 201, r.text
    app_id = r.json()["id"]
    for stage, h in (("county", COUNTY), ("city", CITY), ("province", PROVINCE)):
        r = await review(client, app_id, stage, h)
        assert r.status_code == 200, r.text
    if tier == "little_giant":
        r = await review(client, app_id, "national", PROVINCE_B)
        assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def recognise(client: httpx.AsyncClient, uscc: str, tier: str = "srdi") -> dict[str, Any]:
    app = await to_publicity(client, uscc, tier)
    day = date.fromisoformat(app["publicity_ends_on"]) + timedelta(days=1)
    r = await client.post(f"/api/v1/applications/{app['id']}/announce", json={"announced_on": day.isoformat()},
                          headers=PROVINCE)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_happy_path_county_city_province_publicity_recognised(sf: async_sessionmaker[AsyncSession]) -> None:
    uscc = await add_enterprise(sf)
    async with running_service("evaluation") as (_, client):
        r = await submit(client, uscc)
        assert r.status_code == 201, r.text
        app = r.json()
        assert app["state"] == "submitted" and app["allowed_actions"] == ["review_county", "withdraw"]
        for stage, h, state in (("county", COUNTY, "county_approved"), ("city", CITY, "city_approved"),
                                ("province", PROVINCE, "publicity")):
            r = await review(client, app["id"], stage, h)
            assert r.status_code == 200, r.text
            assert r.json()["state"] == state
        pub = r.json()
        ends = date.fromisoformat(pub["publicity_ends_on"])
        assert ends > date.fromisoformat(pub["publicity_starts_on"])
        # announcing inside the publicity window is refused
        r = await client.post(f"/api/v1/applications/{app['id']}/announce",
                              json={"announced_on": ends.isoformat()}, headers=PROVINCE)
        assert r.status_code == 409
        day = ends + timedelta(days=1)
        r = await client.post(f"/api/v1/applications/{app['id']}/announce",
                              json={"announced_on": day.isoformat()}, headers=PROVINCE)
        assert r.status_code == 200, r.text
        rec = r.json()["recognition"]
        assert rec["valid_from"] == day.isoformat()
        assert rec["valid_to"] == (day.replace(year=day.year + 3) - timedelta(days=1)).isoformat()
        r = await client.get(f"/api/v1/enterprises/{uscc}/recognitions", headers=ent(uscc))
        assert r.status_code == 200
        # announced for a day after the publicity ends, i.e. in the future: listed as upcoming, not past
        assert [t["tier"] for t in r.json()["upcoming"]] == ["srdi"]
        assert r.json()["current"] == [] and r.json()["past"] == []
        listed = (await client.get("/api/v1/applications?state=recognised", headers=CITY)).json()["items"]
        assert [a["id"] for a in listed] == [app["id"]]
        assert (await client.get("/api/v1/applications", headers=OTHER_COUNTY)).json()["items"] == []
    events = await outbox(sf, "zjtx.evaluation.tier.recognised.v1", uscc)
    assert len(events) == 1
    assert events[0]["valid_from"] == day.isoformat() and events[0]["valid_to"] == rec["valid_to"]
    assert events[0]["tier"] == "srdi" and events[0]["level"] == "province" and events[0]["region_code"] == "330110"
    assert [e["stage"] for e in await outbox(sf, "zjtx.evaluation.review.decided.v1", uscc)] == [
        "county", "city", "province"]
    assert len(await outbox(sf, "zjtx.evaluation.application.submitted.v1", uscc)) == 1
    assert len(await outbox(sf, "zjtx.evaluation.publicity.started.v1", uscc)) == 1
    assert await count(sf, backbone.audit_log) >= 5


async def test_each_invalid_transition_is_409_with_allowed(sf: async_sessionmaker[AsyncSession]) -> None:
    uscc = await add_enterprise(sf)
    async with running_service("evaluation") as (_, client):
        app_id = (await submit(client, uscc)).json()["id"]
        # city / province / national before county
        for stage, h in (("city", CITY), ("province", PROVINCE), ("national", PROVINCE)):
            r = await review(client, app_id, stage, h)
            assert r.status_code == 409, (stage, r.text)
            assert r.json()["allowed_transitions"] == ["review_county", "withdraw"]
        r = await client.post(f"/api/v1/applications/{app_id}/announce", json={}, headers=PROVINCE)
        assert r.status_code == 409
        r = await client.post(f"/api/v1/applications/{app_id}/resubmit", json={}, headers=ent(uscc))
        assert r.status_code == 409
        r = await client.post(f"/api/v1/applications/{app_id}/objections", json={"content": "x"}, headers=COUNTY)
        assert r.status_code == 409
        # national stage does not exist for a province title
        await review(client, app_id, "county", COUNTY)
        await review(client, app_id, "city", CITY)
        r = await review(client, app_id, "national", PROVINCE_B)
        assert r.status_code == 409 and r.json()["allowed_transitions"] == ["review_province", "withdraw"]
        # returned → resubmitted by the enterprise → county again
        other = (await submit(client, uscc, tier="innovative")).json()["id"]
        assert (await review(client, other, "county", COUNTY, "returned")).json()["state"] == "returned"
        r = await client.post(f"/api/v1/applications/{other}/resubmit", json={"comment": "已补充材料"},
                              headers=ent(uscc))
        assert r.status_code == 200 and r.json()["state"] == "submitted"
        # rejected is terminal
        assert (await review(client, app_id, "province", PROVINCE, "rejected")).json()["state"] == "rejected"
        r = await client.post(f"/api/v1/applications/{app_id}/withdraw", json={}, headers=ent(uscc))
        assert r.status_code == 409 and r.json()["allowed_transitions"] == []


async def test_wrong_level_403_outside_jurisdiction_404(sf: async_sessionmaker[AsyncSession]) -> None:
    uscc = await add_enterprise(sf)
    other = await add_enterprise(sf)
    async with running_service("evaluation") as (_, client):
        app_id = (await submit(client, uscc)).json()["id"]
        assert (await review(client, app_id, "county", CITY)).status_code == 403  # city official at county stage
        assert (await review(client, app_id, "county", PROVINCE)).status_code == 403
        assert (await review(client, app_id, "county", OTHER_COUNTY)).status_code == 404  # another county
        assert (await review(client, app_id, "county", auth("city_official", "330200"))).status_code == 404
        assert (await review(client, app_id, "county", ent(uscc))).status_code == 403
        assert (await client.get(f"/api/v1/applications/{app_id}", headers=ent(other))).status_code == 404
        # an enterprise applies only for itself; other roles may not apply
        assert (await submit(client, other, headers=ent(uscc))).status_code == 404
        assert (await submit(client, other, headers=CITY)).status_code == 403
        # county nominates an enterprise of its own county only
        r = await submit(client, other, headers=COUNTY)
        assert r.status_code == 201 and r.json()["nominated"] is True
        assert (await submit(client, other, tier="innovative", headers=OTHER_COUNTY)).status_code == 404
        assert (await review(client, app_id, "county", COUNTY)).status_code == 200
        r = await client.get(f"/api/v1/enterprises/{uscc}/evaluations", headers=OTHER_COUNTY)
        assert r.status_code == 404


async def test_prerequisite_blocks_recognition(sf: async_sessionmaker[AsyncSession]) -> None:
    uscc = await add_enterprise(sf)
    async with running_service("evaluation") as (_, client):
        app_id = (await submit(client, uscc, "little_giant")).json()["id"]
        for stage, h in (("county", COUNTY), ("city", CITY), ("province", PROVINCE)):
            assert (await review(client, app_id, stage, h)).status_code == 200
        r = await review(client, app_id, "national", PROVINCE_B)
        assert r.status_code == 409, r.text
        assert "专精特新" in r.json()["detail"] and r.json()["unmet_prerequisites"]
        # an expired title does not count either
        today = date.today()
        await add_title(sf, uscc, "srdi", today - timedelta(days=1200), today - timedelta(days=100))
        assert (await review(client, app_id, "national", PROVINCE_B)).status_code == 409
        await add_title(sf, uscc, "srdi", today - timedelta(days=10), today + timedelta(days=1000))
        r = await review(client, app_id, "national", PROVINCE_B)
        assert r.status_code == 200 and r.json()["state"] == "publicity"


async def test_objection_must_be_resolved(sf: async_sessionmaker[AsyncSession]) -> None:
    uscc = await add_enterprise(sf)
    async with running_service("evaluation") as (_, client):
        app = await to_publicity(client, uscc)
        day = (date.fromisoformat(app["publicity_ends_on"]) + timedelta(days=1)).isoformat()
        r = await client.post(f"/api/v1/applications/{app['id']}/objections", json={"content": "数据存疑"},
                              headers=CITY)
        assert r.status_code == 201
        oid = r.json()["id"]
        r = await client.post(f"/api/v1/applications/{app['id']}/announce", json={"announced_on": day},
                              headers=PROVINCE)
        assert r.status_code == 409 and "resolve_objection" in r.json()["allowed_transitions"]
        # the 409 names the open objection: its id and reason (issue 15 item 9)
        assert oid in r.json()["detail"] and "数据存疑" in r.json()["detail"], r.json()
        assert [o["id"] for o in r.json()["open_objections"]] == [oid], r.json()
        r = await client.post(f"/api/v1/applications/{app['id']}/objections/{oid}/resolve",
                              json={"outcome": "dismissed", "resolution": "经核查数据属实"}, headers=CITY)
        assert r.status_code == 403
        r = await client.post(f"/api/v1/applications/{app['id']}/objections/{oid}/resolve",
                              json={"outcome": "dismissed", "resolution": "经核查数据属实"}, headers=PROVINCE)
        assert r.status_code == 200 and "announce" in r.json()["allowed_actions"]
        r = await client.post(f"/api/v1/applications/{app['id']}/announce", json={"announced_on": day},
                              headers=PROVINCE)
        assert r.status_code == 200


async def test_revocation_data_fraud_cascade_and_ban(sf: async_sessionmaker[AsyncSession]) -> None:
    uscc = await add_enterprise(sf)
    keep = await add_enterprise(sf)
    today = date.today()
    innov = await add_title(sf, uscc, "innovative", today - timedelta(days=30), today + timedelta(days=900))
    hidden = await add_title(sf, uscc, "hidden_champion", today - timedelta(days=30), today + timedelta(days=900))
    async with running_service("evaluation") as (_, client):
        srdi = (await recognise(client, uscc))["recognition"]["id"]
        other = (await recognise(client, keep))["recognition"]["id"]
        r = await client.post(f"/api/v1/recognitions/{other}/revoke",
                              json={"ground": "bad_mood", "evidence": "x"}, headers=PROVINCE)
        assert r.status_code == 422
        r = await client.post(f"/api/v1/recognitions/{other}/revoke",
                              json={"ground": "major_accident", "evidence": "应急管理局通报"}, headers=COUNTY)
        assert r.status_code == 403
        r = await client.post(f"/api/v1/recognitions/{srdi}/revoke",
                              json={"ground": "data_fraud", "evidence": "抽查发现研发费用造假"}, headers=PROVINCE)
        assert r.status_code == 200, r.text
        revoked = {x["id"]: x for x in r.json()["revoked"]}
        assert set(revoked) == {srdi, str(innov)}  # the ladder, not 隐形冠军
        ban = revoked[srdi]["ban_until"]
        assert ban == (today.replace(year=today.year + 3) - timedelta(days=1)).isoformat()
        r = await submit(client, uscc, "innovative")
        assert r.status_code == 409 and r.json()["banned_until"] == ban and "不得再次申报" in r.json()["detail"]
        r = await client.get(f"/api/v1/enterprises/{uscc}/recognitions", headers=PROVINCE)
        assert [t["tier"] for t in r.json()["current"]] == ["hidden_champion"]
        assert r.json()["banned_until"] == ban
        r = await client.post(f"/api/v1/recognitions/{srdi}/revoke",
                              json={"ground": "other", "evidence": "x"}, headers=PROVINCE)
        assert r.status_code == 409
    events = await outbox(sf, "zjtx.evaluation.tier.revoked.v1", uscc)
    assert sorted(e["tier"] for e in events) == ["innovative", "srdi"]
    assert all(e["ground"] == "data_fraud" and e["ban_until"] == ban for e in events)
    async with sf() as s:
        status = (await s.execute(select(Recognition.status).where(Recognition.id == hidden))).scalar()
    assert status == "active"


async def test_recheck_renews_and_expiry_worker(sf: async_sessionmaker[AsyncSession]) -> None:
    today = date.today()
    uscc = await add_enterprise(sf)
    old = await add_title(sf, uscc, "srdi", today - timedelta(days=1000), today + timedelta(days=60))
    gone = await add_title(sf, uscc, "innovative", today - timedelta(days=1200), today - timedelta(days=1))
    expired, reminded = await expire_and_remind(sf, today, 90)
    assert (expired, reminded) == (1, 1)
    assert await expire_and_remind(sf, today, 90) == (0, 0)  # each once
    assert [e["recognition_id"] for e in await outbox(sf, "zjtx.evaluation.tier.expired.v1")] == [str(gone)]
    due = await outbox(sf, "zjtx.evaluation.recheck.due.v1")
    assert [e["recognition_id"] for e in due] == [str(old)]
    async with running_service("evaluation") as (_, client):
        # data not updated every year → no 复核
        r = await submit(client, uscc, recheck_of=str(old))
        assert r.status_code == 409 and "复核" in r.json()["detail"]
        async with sf() as s, s.begin():
            from services.evaluation.db.models import IndicatorReport

            for y in range(today.year - 4, today.year):
                await s.merge(IndicatorReport(uscc=uscc, year=y, revision=1, region_code="330110",
                                              indicators={"operating_revenue": "60000000", "rd_expense": "3000000"}))
        r = await submit(client, uscc, recheck_of=str(old))
        assert r.status_code == 201, r.text
        app_id = r.json()["id"]
        for stage, h in (("county", COUNTY), ("city", CITY), ("province", PROVINCE)):
            r = await review(client, app_id, stage, h)
        day = (date.fromisoformat(r.json()["publicity_ends_on"]) + timedelta(days=1)).isoformat()
        r = await client.post(f"/api/v1/applications/{app_id}/announce", json={"announced_on": day},
                              headers=PROVINCE)
        assert r.status_code == 200 and r.json()["recognition"]["renewal"] is True
    async with sf() as s:
        assert (await s.get(Recognition, old)).status == "renewed"  # type: ignore[union-attr]
        app = await s.get(Application, uuid.UUID(app_id))
        assert app is not None and app.is_recheck


async def test_expiry_worker_two_instances_each_once(sf: async_sessionmaker[AsyncSession]) -> None:
    import asyncio

    today = date.today()
    ids = []
    for i in range(30):
        uscc = await add_enterprise(sf)
        ids.append(await add_title(sf, uscc, "srdi", today - timedelta(days=1200), today - timedelta(days=1 + i)))
    results = await asyncio.gather(*(expire_and_remind(sf, today, 90, batch=7) for _ in range(2)))
    assert sum(e for e, _ in results) == 30
    events = await outbox(sf, "zjtx.evaluation.tier.expired.v1")
    assert sorted(e["recognition_id"] for e in events) == sorted(str(i) for i in ids)
    assert await count(sf, Recognition, Recognition.status == "expired") == 30


async def test_titles_split_into_current_upcoming_and_past(sf: async_sessionmaker[AsyncSession]) -> None:
    u = await add_enterprise(sf)
    today = date.today()
    cur = await add_title(sf, u, "innovative", today - timedelta(days=10), today + timedelta(days=1000))
    nxt = await add_title(sf, u, "srdi", today + timedelta(days=5), today + timedelta(days=1100))
    old = await add_title(sf, u, "innovative", today - timedelta(days=2000), today - timedelta(days=905))
    async with running_service("evaluation") as (_, client):
        body = (await client.get(f"/api/v1/enterprises/{u}/recognitions", headers=ent(u))).json()
    assert [t["id"] for t in body["current"]] == [str(cur)]
    assert [t["id"] for t in body["upcoming"]] == [str(nxt)]
    assert [t["id"] for t in body["past"]] == [str(old)]
