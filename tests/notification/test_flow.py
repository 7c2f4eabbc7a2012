"""End to end through the real broker: recognition → assignment → inbox + SMS + email, exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notification.db.models import assignments, deliveries, policy_pushes
from services.notification.fake_providers import Mailbox
from shared.events.catalog import topic_of
from shared.events.envelope import CloudEvent
from tests.harness import auth, make_producer, published_event, running_service, wait_for
from tests.harness import topic as harness_topic
from tests.notification.conftest import event, recognised, registered, uscc

LIAISON_MOBILE = "13900000001"
LIAISON_EMAIL = "liaison@yuhang-tech.example.cn"


async def produce(producer: Any, ev: CloudEvent, times: int = 1) -> None:
    for _ in range(times):
        await producer.send_and_wait(harness_topic(topic_of(ev.type.split(".")[1])), value=ev.kafka_value(),
                                     key=ev.subject.encode(), headers=ev.kafka_headers())


@pytest.fixture
async def stack(clean: Mailbox, providers: tuple[Mailbox, dict[str, Any]]) -> AsyncIterator[
        tuple[httpx.AsyncClient, Any, Mailbox]]:
    producer = await make_producer()
    try:
        async with running_service("notification", relay=True, consumer=True, **providers[1]) as (_, client):
            yield client, producer, clean
    finally:
        await producer.stop()


async def add_commissioner(client: httpx.AsyncClient, cid: str, region: str, level: str, capacity: int = 10) -> None:
    official = "city_official" if level == "city" else "county_official"
    r = await client.post("/api/v1/commissioners", headers=auth(official, region), json={
        "id": cid, "name": f"专员{cid}", "mobile": "138" + cid[-8:].rjust(8, "0"), "email": f"{cid}@gov.example.cn",
        "region": region, "level": level, "capacity": capacity,
    })
    assert r.status_code == 201, r.text


async def settled(box: Mailbox, sf: async_sessionmaker[AsyncSession], sms: int, emails: int) -> None:
    async def done() -> bool:
        async with sf() as s:
            open_rows = (await s.execute(select(deliveries.c.id).where(deliveries.c.status != "sent"))).first()
        return len(box.sms) >= sms and len(box.emails) >= emails and open_rows is None
    await wait_for(done, timeout=20, what=f"{sms} SMS and {emails} emails sent")
    await asyncio.sleep(0.8)  # room for any duplicate to show up


async def test_recognition_assigns_and_notifies_once_then_promotion_moves_to_city(
    stack: tuple[httpx.AsyncClient, Any, Mailbox], sf: async_sessionmaker[AsyncSession]
) -> None:
    client, producer, box = stack
    await add_commissioner(client, "cm-yh-00000001", "330110", "county")
    await add_commissioner(client, "cm-hz-00000002", "330100", "city")
    u = uscc("330110")
    await produce(producer, registered(u, "330110", "杭州余杭精工科技有限公司", LIAISON_MOBILE, LIAISON_EMAIL))
    ev = recognised(u, "330110", "srdi")
    await produce(producer, ev, times=3)  # the same event delivered three times

    async def assigned() -> bool:
        r = await client.get(f"/api/v1/enterprises/{u}/commissioner", headers=auth("county_official", "330110"))
        return r.status_code == 200 and (r.json().get("commissioner") or {}).get("id") == "cm-yh-00000001"
    await wait_for(assigned, what="county commissioner assigned")
    # enterprise: 认定通知 + 服务专员通知; commissioner: 服务企业指派 — each by SMS and email, once.
    await settled(box, sf, sms=3, emails=3)
    assert len(box.sms_to(LIAISON_MOBILE)) == 2
    assert len(box.sms_to("13800000001")) == 1
    assert len(box.emails_to(LIAISON_EMAIL)) == 2
    assert len(box.emails_to("cm-yh-00000001@gov.example.cn")) == 1
    assert any("专精特新中小企业" in m["text"] for m in box.sms_to(LIAISON_MOBILE))
    assert "服务专员" in box.emails_to("cm-yh-00000001@gov.example.cn")[0]["subject"] or \
        "服务企业" in box.emails_to("cm-yh-00000001@gov.example.cn")[0]["subject"]

    ent_inbox = (await client.get("/api/v1/notifications", headers=auth("enterprise", "330110", uscc=u))).json()
    assert sorted(i["template_code"] for i in ent_inbox["items"]) == ["commissioner_assigned_enterprise",
                                                                      "tier_recognised"]
    assert all(i["template_version"] == 1 for i in ent_inbox["items"])
    assert {d["status"] for i in ent_inbox["items"] for d in i["deliveries"]} == {"sent"}
    cm_inbox = (await client.get("/api/v1/notifications",
                                 headers=auth("commissioner", "330110", sub="cm-yh-00000001"))).json()
    assert [i["template_code"] for i in cm_inbox["items"]] == ["commissioner_assigned_commissioner"]
    assert u in cm_inbox["items"][0]["body"]

    # Promotion to 小巨人: county → city commissioner; both the enterprise and the commissioners are told.
    box.clear()
    await produce(producer, recognised(u, "330110", "little_giant", level="national"))

    async def moved() -> bool:
        async with sf() as s:
            row = (await s.execute(select(assignments).where(assignments.c.uscc == u))).mappings().first()
        return row is not None and row["commissioner_id"] == "cm-hz-00000002" and row["level"] == "city"
    await wait_for(moved, what="moved to the city commissioner")
    # enterprise: 认定通知 + 服务专员变更; new city commissioner: 指派; old county commissioner: 调整.
    await settled(box, sf, sms=4, emails=4)
    assert len(box.sms_to(LIAISON_MOBILE)) == 2
    assert len(box.sms_to("13800000002")) == 1
    assert len(box.sms_to("13800000001")) == 1
    change = [m for m in box.sms_to(LIAISON_MOBILE) if "服务专员" in m["text"]]
    assert len(change) == 1 and "市级" in change[0]["text"] and "原服务专员" in change[0]["text"]
    view = (await client.get(f"/api/v1/enterprises/{u}/commissioner",
                             headers=auth("enterprise", "330110", uscc=u))).json()
    assert view["level"] == "city" and view["tier"] == "little_giant"
    assert [h["commissioner_id"] for h in view["history"]] == ["cm-hz-00000002", "cm-yh-00000001"]
    assert "县级调整为市级" in view["history"][0]["reason"]
    served = await client.get("/api/v1/commissioners/cm-yh-00000001/enterprises",
                              headers=auth("commissioner", "330110", sub="cm-yh-00000001"))
    assert served.status_code == 200 and served.json() == []

    # 精准推送: a city policy for 小巨人 reaches this enterprise once, even when published twice.
    policy = {"policy_id": "pol-hz-lg-1", "name": "杭州市小巨人企业一次性奖励", "jurisdiction": "330100",
              "kind": "reward", "tiers": ["little_giant"], "effective_from": "2026-01-01",
              "effective_to": "2030-12-31", "summary": "奖励200万元。"}
    other = uscc("330109")
    await produce(producer, registered(other, "330109", "萧山某智造有限公司", "13900000009", None))
    await produce(producer, event("zjtx.finance.policy.published.v1", "330100", policy, "330100"))
    await produce(producer, event("zjtx.finance.policy.published.v1", "330100", policy, "330100"))
    # later, the evaluation finds the other enterprise eligible: it gets the push too, with its reason
    await produce(producer, event("zjtx.evaluation.evaluation.completed.v1", other, {
        "uscc": other, "region_code": "330109", "year": 2026, "as_of": "2026-11-20",
        "results": [{"ruleset_id": "rs-lg", "tier": "little_giant", "eligible": True, "score": 92}],
    }, "330109"))

    async def pushed() -> bool:
        async with sf() as s:
            rows = (await s.execute(select(policy_pushes))).mappings().all()
        return len(rows) == 2
    await wait_for(pushed, what="policy pushed to both")
    async with sf() as s:
        rows = {r["uscc"]: r["reason"] for r in (await s.execute(select(policy_pushes))).mappings().all()}
    assert "已获认定" in rows[u] and "经评估符合条件" in rows[other]
    inbox = (await client.get("/api/v1/notifications?unread=true",
                              headers=auth("enterprise", "330110", uscc=u))).json()
    assert [i["template_code"] for i in inbox["items"]].count("policy_push") == 1


async def test_no_commissioner_alerts_officials_and_emits(
    stack: tuple[httpx.AsyncClient, Any, Mailbox], sf: async_sessionmaker[AsyncSession]
) -> None:
    client, producer, _ = stack
    u = uscc("330127")  # 淳安县: nobody appointed
    await produce(producer, recognised(u, "330127", "innovative"))

    async def alerted() -> bool:
        r = await client.get("/api/v1/notifications", headers=auth("county_official", "330127"))
        return r.status_code == 200 and len(r.json()["items"]) == 1
    await wait_for(alerted, what="alert in the county officials' inbox")
    item = (await client.get("/api/v1/notifications", headers=auth("county_official", "330127"))).json()["items"][0]
    assert item["template_code"] == "commissioner_unavailable" and item["urgent"] and u in item["body"]
    # the city officials' inbox stays empty, and the gap is recorded, and the event relayed
    assert (await client.get("/api/v1/notifications", headers=auth("city_official", "330100"))).json()["items"] == []

    assert await published_event(u, "zjtx.notification.commissioner.unavailable.v1"), "unavailable event published"
    view = (await client.get(f"/api/v1/enterprises/{u}/commissioner",
                             headers=auth("county_official", "330127"))).json()
    assert view["status"] == "unassigned" and view["commissioner"] is None

    # A commissioner appointed later fills the gap.
    await add_commissioner(client, "cm-ca-00000003", "330127", "county")
    view = (await client.get(f"/api/v1/enterprises/{u}/commissioner",
                             headers=auth("county_official", "330127"))).json()
    assert view["status"] == "assigned" and view["commissioner"]["id"] == "cm-ca-00000003"
