"""Event-driven evaluation through the real broker: registry and agency events in, results and events out."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.evaluation.db.models import Application, Enterprise, Evaluation, Recognition
from shared.events.catalog import topic_of
from shared.events.envelope import CloudEvent
from tests.evaluation.conftest import add_title, count, new_uscc, outbox
from tests.harness import auth, make_producer, read_topic, running_service, wait_for
from tests.harness import topic as harness_topic


def event(event_type: str, uscc: str, data: dict[str, Any], region: str | None = "330110") -> CloudEvent:
    source = "/zjtx/" + event_type.split(".")[1]
    return CloudEvent(id=str(uuid.uuid4()), source=source, type=event_type, subject=uscc, regioncode=region,
                      time=datetime.now(UTC), data=data)


async def produce(*events: CloudEvent) -> None:
    producer = await make_producer()
    try:
        for e in events:
            topic = harness_topic(topic_of(e.type.split(".")[1]))
            await producer.send_and_wait(topic, value=e.kafka_value(), key=e.subject.encode(),
                                         headers=e.kafka_headers())
    finally:
        await producer.stop()


def indicators_event(uscc: str, revision: int = 1, revenue: str = "60000000.00") -> CloudEvent:
    return event("zjtx.registry.indicators.reported.v1", uscc, {
        "uscc": uscc, "region_code": "330110", "year": date.today().year - 1, "revision": revision,
        "source": "enterprise", "reported_at": datetime.now(UTC).isoformat(),
        "enterprise": {"name": "杭州测试科技有限公司", "founded_on": "2010-05-01", "industry_code": "C3989",
                       "is_manufacturing": True, "scale": "medium"},
        "indicators": {"operating_revenue": revenue, "rd_expense": "3000000.00", "employees": 120},
    })


async def test_indicators_reported_evaluated_stored_and_published(sf: async_sessionmaker[AsyncSession]) -> None:
    uscc = new_uscc()
    registered = event("zjtx.registry.enterprise.registered.v1", uscc, {
        "uscc": uscc, "name": "杭州测试科技有限公司", "region_code": "330110", "industry_code": "C3989",
        "is_manufacturing": True, "founded_on": "2010-05-01", "scale": "medium", "status": "active",
        "focus": {}, "liaison": None, "version": 1})
    reported = indicators_event(uscc)
    await produce(registered, reported, reported)  # the duplicate is absorbed by the inbox
    async with running_service("evaluation", relay=True, consumer=True) as (_, client):
        async def stored() -> bool:
            return await count(sf, Evaluation, Evaluation.uscc == uscc) >= 2

        await wait_for(stored, timeout=20, what="evaluations stored")
        async with sf() as s:
            rows = (await s.execute(select(Evaluation).where(Evaluation.uscc == uscc))).scalars().all()
            ent = await s.get(Enterprise, uscc)
        by_rs = {r.ruleset_id: r for r in rows}
        assert by_rs["T-srdi"].eligible is True and by_rs["T-srdi"].score is not None
        assert by_rs["T-giant"].eligible is False  # no valid 专精特新 title
        assert by_rs["T-giant"].explanation["prerequisites"][0]["met"] is False
        assert ent is not None and ent.founded_on == date(2010, 5, 1) and ent.version == 1
        assert len({r.ruleset_id for r in rows}) == len(rows)  # evaluated once despite the duplicate

        completed: list[Any] = []

        async def published() -> bool:
            recs = await read_topic(topic_of("evaluation"), 10**6, timeout=2)
            completed[:] = [json.loads(m.value) for m in recs if m.key == uscc.encode()
                            and dict(m.headers).get("ce_type") == b"zjtx.evaluation.evaluation.completed.v1"]
            return bool(completed)

        await wait_for(published, timeout=20, what="completed event on the broker")
        assert len(completed) == 1
        results = {x["ruleset_id"]: x for x in completed[0]["results"]}
        assert results["T-srdi"]["eligible"] is True and results["T-giant"]["eligible"] is False

        r = await client.get(f"/api/v1/enterprises/{uscc}/evaluations",
                             headers=auth("enterprise", "330110", uscc=uscc))
        assert r.status_code == 200
        by_id = {i["ruleset_id"]: i for i in r.json()["items"]}
        assert by_id["T-srdi"]["tier"] == "srdi" and by_id["T-srdi"]["eligible"] is True
        assert by_id["T-srdi"]["explanation"]["items"] and by_id["T-giant"]["eligible"] is False
        assert (await client.get(f"/api/v1/enterprises/{uscc}/evaluations?year=1999",
                                 headers=auth("county_official", "330110"))).json()["items"] == []

        # deregistration: open applications withdrawn, no further evaluation
        r = await client.post("/api/v1/applications", json={"uscc": uscc, "tier": "srdi", "batch_year": 2026},
                              headers=auth("enterprise", "330110", uscc=uscc))
        assert r.status_code == 201
        app_id = uuid.UUID(r.json()["id"])
        await produce(
            event("zjtx.registry.enterprise.deregistered.v1", uscc,
                  {"uscc": uscc, "region_code": "330110", "reason": "注销", "version": 2}),
            indicators_event(uscc, revision=2),
        )

        async def withdrawn() -> bool:
            async with sf() as s:
                app = await s.get(Application, app_id)
                return app is not None and app.state == "withdrawn"

        await wait_for(withdrawn, timeout=20, what="application withdrawn")
        await wait_for(lambda: _inbox_has(sf, 4), timeout=20, what="revision 2 consumed")
        assert await count(sf, Evaluation, Evaluation.uscc == uscc) == len(rows)


async def _inbox_has(sf: async_sessionmaker[AsyncSession], n: int) -> bool:
    from services.evaluation.db.models import backbone

    return await count(sf, backbone.inbox) >= n


async def test_agency_listing_revokes(sf: async_sessionmaker[AsyncSession]) -> None:
    uscc = new_uscc()
    today = date.today()
    a = await add_title(sf, uscc, "srdi", today - timedelta(days=100), today + timedelta(days=900))
    b = await add_title(sf, uscc, "hidden_champion", today - timedelta(days=100), today + timedelta(days=900))
    listing = event("zjtx.agency.listing.recorded.v1", uscc, {
        "uscc": uscc, "region_code": "330110", "listing": "serious_dishonesty", "agency": "省信用办",
        "recorded_on": today.isoformat(), "evidence": "列入严重失信主体名单 (文号 X)"}, region=None)
    noted = event("zjtx.agency.listing.recorded.v1", uscc, {
        "uscc": uscc, "region_code": None, "listing": "abnormal_operation", "agency": "市场监管局",
        "recorded_on": today.isoformat(), "evidence": "经营异常"}, region=None)
    await produce(noted, listing)
    async with running_service("evaluation", consumer=True):
        async def revoked() -> bool:
            return await count(sf, Recognition, Recognition.uscc == uscc, Recognition.status == "revoked") == 2

        await wait_for(revoked, timeout=20, what="titles revoked by the listing event")
    async with sf() as s:
        recs = (await s.execute(select(Recognition).where(Recognition.id.in_([a, b])))).scalars().all()
    assert all(r.revoke_ground == "serious_dishonesty" and r.ban_until is None for r in recs)
    assert all("省信用办" in (r.revoke_evidence or "") for r in recs)
    events = await outbox(sf, "zjtx.evaluation.tier.revoked.v1", uscc)
    assert sorted(e["tier"] for e in events) == ["hidden_champion", "srdi"]
    assert json.dumps(events[0], ensure_ascii=False).count("serious_dishonesty") == 1
