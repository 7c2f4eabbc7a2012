"""市场监管 and 税务 feeds applied by registry, through the real broker (Tansu) and PostgreSQL: sent by the worked
example producer (examples/agency_producer.py) to the agency topic."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from examples import agency_producer
from shared.events import agency
from shared.events.envelope import dumps
from tests.agency.conftest import one, rows
from tests.harness import read_topic, running_service, wait_for
from tests.harness import topic as harness_topic
from tests.registry.helpers import XIAOSHAN, YH, YUHANG, register

SCJG = "杭州市市场监督管理局"
TAX = "国家税务总局杭州市余杭区税务局"


def payload(event_type: str, uscc: str, **changes: Any) -> tuple[str, dict[str, Any]]:
    return event_type, {**agency.EXAMPLES[event_type], "uscc": uscc, **changes}


async def test_market_supervision_and_tax_feeds(engines: dict[str, AsyncEngine], bootstrap: str) -> None:
    reg = engines["registry"]
    topic = harness_topic(agency.TOPIC)
    async with running_service("registry", consumer=True) as (_, client):
        code = (await register(client, 41))["uscc"]
        r = await client.post(f"/api/v1/pools/county/{YUHANG}/members", headers=YH,
                              json={"uscc": code, "track": "srdi", "year": 2026, "basis": "nomination"})
        assert r.status_code == 201, r.text
        # a malformed move (no destination) first: dead-lettered with the reason, the feed goes on
        broken = dict(agency.EXAMPLES[agency.MOVED], uscc=code)
        del broken["to_region_code"]
        headers = agency_producer.record(agency.MOVED, agency.EXAMPLES[agency.MOVED], "/agency/hz-scjg")[2]
        bad = (code.encode(), dumps(broken), [(k, v if k != "ce_subject" else code.encode()) for k, v in headers])
        await agency_producer.produce(bootstrap, [], topic=topic, raw=[bad])
        await agency_producer.produce(bootstrap, [
            payload(agency.MOVED, code, region_code=XIAOSHAN, agency=SCJG),
            payload(agency.RENAMED, code, region_code=XIAOSHAN, old_name=None, new_name="浙江精工智能装备有限公司"),
            payload(agency.REPRESENTATIVE_CHANGED, code, region_code=XIAOSHAN),
            payload(agency.TAX_REPORTED, code, region_code=XIAOSHAN, agency=TAX),
        ], topic=topic, source="/agency/hz-scjg")

        async def taxed() -> bool:
            return bool(await one(reg, "SELECT count(*) FROM registry.indicator_revisions WHERE uscc = :u", u=code))

        await wait_for(taxed, timeout=30, what="the agency feed applied")

    ent = (await rows(reg, "SELECT * FROM registry.enterprises WHERE uscc = :u", u=code))[0]
    assert ent["region_code"] == XIAOSHAN
    assert ent["name"] == "浙江精工智能装备有限公司"
    assert ent["legal_representative"] == "李建华"
    # the move: out of 余杭's county pool, into 萧山's (same track, year and basis), each with its event
    members = await rows(reg, """
        SELECT p.region_code, p.track, m.year, m.basis, m.exited_on, m.exit_reason, m.reason
        FROM registry.pool_memberships m JOIN registry.pools p ON p.id = m.pool_id
        WHERE m.uscc = :u ORDER BY m.id""", u=code)
    assert [(m["region_code"], m["exited_on"] is None) for m in members] == [(YUHANG, False), (XIAOSHAN, True)]
    assert "迁出至萧山区" in members[0]["exit_reason"] and "自余杭区" in members[1]["reason"]
    assert (members[1]["track"], members[1]["year"], members[1]["basis"]) == ("srdi", 2026, "nomination")
    out = await rows(reg, "SELECT type, headers, payload FROM registry.outbox WHERE key = :u ORDER BY seq", u=code)
    types = [o["type"] for o in out]
    assert types.count("zjtx.registry.enterprise.moved.v1") == 1
    moved = next(o["payload"] for o in out if o["type"] == "zjtx.registry.enterprise.moved.v1")
    assert (moved["from_region_code"], moved["to_region_code"], moved["moved_on"]) == (YUHANG, XIAOSHAN,
                                                                                       "2026-05-20")
    assert types.index("zjtx.registry.pool.exited.v1") < types.index("zjtx.registry.enterprise.moved.v1")
    assert "zjtx.registry.pool.entered.v1" in types
    # 税务: an agency-sourced revision, merged and published for evaluation
    rev = (await rows(reg, "SELECT * FROM registry.indicator_revisions WHERE uscc = :u", u=code))[0]
    assert rev["source"] == f"agency:{TAX}" and rev["year"] == 2025
    assert rev["values"] == {"operating_revenue": "68500000.00", "rd_expense": "4210000.00", "tax_paid": "3125000.50"}
    reported = [o["payload"] for o in out if o["type"] == "zjtx.registry.indicators.reported.v1"]
    assert reported and reported[-1]["source"] == f"agency:{TAX}"
    assert reported[-1]["indicators"]["operating_revenue"] == "68500000.00"
    # every effect audited with the agency as the actor
    actors = {(a["actor"], a["role"], a["action"]) for a in await rows(
        reg, "SELECT actor, role, action FROM registry.audit_log "
             "WHERE object_id LIKE :u || '%' OR action LIKE 'pool.%'", u=code)}
    assert (f"agency:{SCJG}", "agency", "enterprise.update") in actors
    assert (f"agency:{SCJG}", "agency", "pool.exit") in actors and (f"agency:{SCJG}", "agency", "pool.enter") in actors
    assert ("agency:杭州市余杭区市场监督管理局", "agency", "enterprise.legal_representative") in actors
    assert (f"agency:{TAX}", "agency", "indicators.report") in actors
    # the malformed one: on the DLQ with the reason naming the missing field
    dlq = await read_topic(agency.TOPIC + ".dlq", 1, timeout=15)
    assert len(dlq) == 1
    reason = dict(dlq[0].headers)["dlq_error"].decode()
    assert "ValidationError" in reason and "to_region_code" in reason


async def test_deregistered_and_refused_messages(engines: dict[str, AsyncEngine], bootstrap: str) -> None:
    reg = engines["registry"]
    topic = harness_topic(agency.TOPIC)
    async with running_service("registry", consumer=True) as (_, client):
        code = (await register(client, 42))["uscc"]
        other = (await register(client, 43))["uscc"]
        await client.post(f"/api/v1/pools/county/{YUHANG}/members", headers=YH,
                          json={"uscc": code, "track": "innovative", "year": 2026, "basis": "nomination"})
        await agency_producer.produce(bootstrap, [
            # a move from a region the enterprise is not in: refused (DLQ), nothing changes
            payload(agency.MOVED, other, from_region_code="330106", to_region_code=XIAOSHAN, region_code=XIAOSHAN),
            payload(agency.DEREGISTERED, code),
        ], topic=topic)

        async def gone() -> bool:
            return await one(reg, "SELECT status FROM registry.enterprises WHERE uscc = :u", u=code) == "deregistered"

        await wait_for(gone, timeout=30, what="deregistered by the agency")
    assert await one(reg, "SELECT region_code FROM registry.enterprises WHERE uscc = :u", u=other) == YUHANG
    assert await one(reg, "SELECT count(*) FROM registry.pool_memberships WHERE uscc = :u AND exited_on IS NULL",
                     u=code) == 0
    reason = await one(reg, "SELECT deregistered_reason FROM registry.enterprises WHERE uscc = :u", u=code)
    assert "股东会决议解散" in reason and "余杭区市场监督管理局" in reason
    assert await one(reg, "SELECT actor FROM registry.audit_log WHERE action = 'enterprise.deregister'") == \
        "agency:杭州市余杭区市场监督管理局"
    dlq = await read_topic(agency.TOPIC + ".dlq", 1, timeout=15)
    assert [dict(d.headers)["ce_subject"].decode() for d in dlq] == [other]
    assert "与迁出区划 330106 不符" in dict(dlq[0].headers)["dlq_error"].decode()


async def test_region_change_by_an_official_moves_pools_and_publishes_moved(engines: dict[str, AsyncEngine]) -> None:
    """Issue 15 item 3: a region change in registry is a move too (pools follow, enterprise.moved published)."""
    from tests.harness import auth

    reg = engines["registry"]
    async with running_service("registry") as (_, client):
        code = (await register(client, 44))["uscc"]
        await client.post(f"/api/v1/pools/county/{YUHANG}/members", headers=YH,
                          json={"uscc": code, "track": "srdi", "year": 2026, "basis": "rule_result"})
        city = auth("city_official", "330100")
        etag = (await client.get(f"/api/v1/enterprises/{code}", headers=city)).headers["ETag"]
        r = await client.patch(f"/api/v1/enterprises/{code}", json={"region_code": XIAOSHAN},
                               headers={**city, "If-Match": etag})
        assert r.status_code == 200, r.text
    active = await rows(reg, """SELECT p.region_code, m.basis FROM registry.pool_memberships m
        JOIN registry.pools p ON p.id = m.pool_id WHERE m.uscc = :u AND m.exited_on IS NULL""", u=code)
    assert [(a["region_code"], a["basis"]) for a in active] == [(XIAOSHAN, "rule_result")]
    moved = await rows(reg, "SELECT payload FROM registry.outbox WHERE key = :u AND type = :t", u=code,
                       t="zjtx.registry.enterprise.moved.v1")
    assert [(m["payload"]["from_region_code"], m["payload"]["to_region_code"]) for m in moved] == [
        (YUHANG, XIAOSHAN)]
    assert moved[0]["payload"]["source"] == "city_official:330100"
