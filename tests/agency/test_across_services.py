"""The agency feeds across the services (issue 13 "Done when", issue 15 item 3), every service in process with
its consumer and relay on one Tansu broker and PostgreSQL: a market-supervision move of an enterprise from 余杭
(330110) to 萧山 (330109) moves its pools and its commissioner and re-announces its provincial title to 萧山 as
migrated in, which finance's 迁入 rule handles; a serious-dishonesty listing sent by the example producer revokes
the title, and the effect reaches finance (entitlement cancelled) and notification (enterprise and commissioner
told)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from examples import agency_producer
from services.evaluation.db.models import Recognition
from services.notification.fake_providers import running_providers
from shared.events import agency
from shared.events.catalog import topic_of
from shared.events.envelope import CloudEvent
from shared.infra import free_port
from tests.agency.conftest import one, rows
from tests.finance.util import seed
from tests.harness import auth, make_producer, running_service, wait_for
from tests.harness import topic as harness_topic
from tests.registry.helpers import XIAOSHAN, YH, YUHANG, register

TITLE_FROM = date(2025, 6, 1)


@contextlib.asynccontextmanager
async def stack(sfs: dict[str, async_sessionmaker[AsyncSession]]) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    await seed(sfs["finance"])
    sms, smtp = free_port(), free_port()
    async with contextlib.AsyncExitStack() as es:
        await es.enter_async_context(running_providers(sms, smtp))
        clients: dict[str, httpx.AsyncClient] = {}
        for name in ("registry", "evaluation", "finance", "notification"):
            extra: dict[str, Any] = {}
            if name == "notification":
                extra = {"sms_gateway_url": f"http://127.0.0.1:{sms}", "smtp_host": "127.0.0.1", "smtp_port": smtp}
            _, clients[name] = await es.enter_async_context(
                running_service(name, relay=True, consumer=True, **extra))
        yield clients


async def add_commissioner(client: httpx.AsyncClient, cid: str, region: str) -> None:
    r = await client.post("/api/v1/commissioners", headers=auth("county_official", region), json={
        "id": cid, "name": f"专员{cid}", "mobile": "13700000000", "email": f"{cid}@gov.example.cn",
        "region": region, "level": "county", "capacity": 10})
    assert r.status_code == 201, r.text


async def recognise(sf: async_sessionmaker[AsyncSession], uscc: str) -> str:
    """A valid provincial 专精特新 title held by evaluation and announced (its tier.recognised on the topic)."""
    rid = uuid.uuid4()
    valid_to = date(2028, 5, 31)
    async with sf() as s, s.begin():
        s.add(Recognition(id=rid, uscc=uscc, region_code=YUHANG, tier="srdi", level="province", ruleset_id="A-srdi",
                          batch_year=2025, announced_on=TITLE_FROM, valid_from=TITLE_FROM, valid_to=valid_to,
                          status="active"))
    event = CloudEvent(
        id=str(uuid.uuid4()), source="/zjtx/evaluation", type="zjtx.evaluation.tier.recognised.v1", subject=uscc,
        regioncode=YUHANG, time=datetime.now(UTC),
        data={"recognition_id": str(rid), "uscc": uscc, "region_code": YUHANG, "tier": "srdi", "level": "province",
              "ruleset_id": "A-srdi", "batch_year": 2025, "announced_on": TITLE_FROM.isoformat(),
              "valid_from": TITLE_FROM.isoformat(), "valid_to": valid_to.isoformat(), "renewal": False,
              "migrated_in": False})
    producer = await make_producer()
    try:
        await producer.send_and_wait(harness_topic(topic_of("evaluation")), value=event.kafka_value(),
                                     key=uscc.encode(), headers=event.kafka_headers())
    finally:
        await producer.stop()
    return str(rid)


async def commissioner_of(engine: AsyncEngine, uscc: str) -> Any:
    return await one(engine, "SELECT commissioner_id FROM notification.assignments WHERE uscc = :u", u=uscc)


async def test_move_from_yuhang_to_xiaoshan_moves_pools_commissioner_and_title(
    sfs: dict[str, async_sessionmaker[AsyncSession]], engines: dict[str, AsyncEngine], bootstrap: str
) -> None:
    async with stack(sfs) as c:
        await add_commissioner(c["notification"], "cm-yh-0001", YUHANG)
        await add_commissioner(c["notification"], "cm-xs-0001", XIAOSHAN)
        code = (await register(c["registry"], 51))["uscc"]
        r = await c["registry"].post(f"/api/v1/pools/county/{YUHANG}/members", headers=YH,
                                     json={"uscc": code, "track": "srdi", "year": 2026, "basis": "nomination"})
        assert r.status_code == 201, r.text

        async def known() -> bool:
            return await one(engines["evaluation"], "SELECT count(*) FROM evaluation.enterprises WHERE uscc = :u",
                             u=code) == 1

        await wait_for(known, timeout=30, what="evaluation knows the enterprise")
        rid = await recognise(sfs["evaluation"], code)

        async def served_in_yuhang() -> bool:
            return await commissioner_of(engines["notification"], code) == "cm-yh-0001"

        await wait_for(served_in_yuhang, timeout=30, what="余杭's commissioner assigned")
        await agency_producer.produce(bootstrap, [(agency.MOVED, {
            **agency.EXAMPLES[agency.MOVED], "uscc": code, "effective_on": date.today().isoformat()})],
            topic=harness_topic(agency.TOPIC), source="/agency/hz-scjg")

        async def served_in_xiaoshan() -> bool:
            return await commissioner_of(engines["notification"], code) == "cm-xs-0001"

        await wait_for(served_in_xiaoshan, timeout=40, what="萧山's commissioner assigned")

        async def finance_migrated() -> bool:
            return await one(engines["finance"], "SELECT count(*) FROM finance.entitlements WHERE uscc = :u "
                             "AND jurisdiction = :j", u=code, j=XIAOSHAN) == 1

        await wait_for(finance_migrated, timeout=40, what="finance applied the migrated-in recognition")

        async def new_commissioner_told() -> bool:
            return bool(await one(engines["notification"], "SELECT count(*) FROM notification.notices "
                                  "WHERE uscc = :u AND recipient = 'commissioner:cm-xs-0001'", u=code))

        await wait_for(new_commissioner_told, timeout=30, what="萧山's commissioner told")
    reg, ev, fin = engines["registry"], engines["evaluation"], engines["finance"]
    assert await one(reg, "SELECT region_code FROM registry.enterprises WHERE uscc = :u", u=code) == XIAOSHAN
    active = await rows(reg, """SELECT p.region_code FROM registry.pool_memberships m
        JOIN registry.pools p ON p.id = m.pool_id WHERE m.uscc = :u AND m.exited_on IS NULL""", u=code)
    assert [a["region_code"] for a in active] == [XIAOSHAN]
    # registry's current tier follows the re-announced recognition to 萧山
    assert await one(reg, "SELECT region_code FROM registry.recognitions WHERE recognition_id = :r", r=rid) == XIAOSHAN
    rec = (await rows(ev, "SELECT region_code, migrated_in, status FROM evaluation.recognitions"))[0]
    assert (rec["region_code"], rec["migrated_in"], rec["status"]) == (XIAOSHAN, True, "active")
    # finance: 萧山's policy (migrated_in: excluded) decided it as migrated in; the city and province did not pay
    # the same title twice
    ents = await rows(fin, "SELECT jurisdiction, amount, explanation FROM finance.entitlements WHERE uscc = :u "
                      "ORDER BY jurisdiction", u=code)
    xs = next(e for e in ents if e["jurisdiction"] == XIAOSHAN)
    assert xs["explanation"]["rule"] == "migrated_in_excluded" and xs["amount"] == 0
    assert sorted(e["jurisdiction"] for e in ents).count("330100") <= 1
    # the commissioner change was told, not a second 认定 notice
    notices = await rows(engines["notification"], "SELECT recipient, template_code FROM notification.notices "
                         "WHERE uscc = :u", u=code)
    assert [n["template_code"] for n in notices].count("tier_recognised") == 1


async def test_serious_dishonesty_revokes_and_reaches_finance_and_notification(
    sfs: dict[str, async_sessionmaker[AsyncSession]], engines: dict[str, AsyncEngine], bootstrap: str
) -> None:
    async with stack(sfs) as c:
        await add_commissioner(c["notification"], "cm-yh-0002", YUHANG)
        code = (await register(c["registry"], 52))["uscc"]

        async def known() -> bool:
            return await one(engines["evaluation"], "SELECT count(*) FROM evaluation.enterprises WHERE uscc = :u",
                             u=code) == 1

        await wait_for(known, timeout=30, what="evaluation knows the enterprise")
        rid = await recognise(sfs["evaluation"], code)

        async def entitled() -> bool:
            return bool(await commissioner_of(engines["notification"], code)) and bool(await one(
                engines["finance"], "SELECT count(*) FROM finance.entitlements WHERE uscc = :u", u=code))

        await wait_for(entitled, timeout=30, what="entitlements and commissioner")
        await agency_producer.produce(bootstrap, [(agency.CREDIT_LISTED, {
            **agency.EXAMPLES[agency.CREDIT_LISTED], "uscc": code, "listing": "serious_dishonesty",
            "agency": "浙江省发展和改革委员会", "reason": "列入失信被执行人名单",
            "listed_on": date.today().isoformat()})],
            topic=harness_topic(agency.TOPIC), source="/agency/credit-zj")

        async def cancelled() -> bool:
            statuses = {r["status"] for r in await rows(
                engines["finance"], "SELECT status FROM finance.entitlements WHERE uscc = :u", u=code)}
            return statuses == {"cancelled"}

        await wait_for(cancelled, timeout=40, what="finance cancelled the entitlements")

        async def told() -> bool:
            got = {n["recipient"] for n in await rows(engines["notification"],
                   "SELECT recipient FROM notification.notices WHERE uscc = :u AND template_code = 'tier_revoked'",
                   u=code)}
            return {f"enterprise:{code}", "commissioner:cm-yh-0002"} <= got

        await wait_for(told, timeout=40, what="the enterprise and its commissioner told")
    assert await one(engines["evaluation"], "SELECT status FROM evaluation.recognitions WHERE id = :r",
                     r=uuid.UUID(rid)) == "revoked"
    assert await one(engines["registry"], "SELECT status FROM registry.recognitions WHERE recognition_id = :r",
                     r=rid) == "revoked"
