"""信用 feed applied by evaluation (issue 13 item 4, issue 15 item 4), through Tansu and PostgreSQL: a listing
makes the enterprise ineligible under rule sets with the condition (and refuses new applications), 严重失信 revokes
its titles, a lifting restores eligibility for new applications only; malformed messages are dead-lettered."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from examples import agency_producer
from shared.events import agency
from tests.agency.conftest import eval_enterprise, latest_eval, one, rows
from tests.evaluation.conftest import new_uscc
from tests.harness import auth, read_topic, running_service, wait_for
from tests.harness import topic as harness_topic

AGENCY = "杭州市余杭区市场监督管理局"
CREDIT = "浙江省发展和改革委员会(信用浙江)"


def listed(uscc: str, listing: str, **extra: Any) -> tuple[str, dict[str, Any]]:
    return agency.CREDIT_LISTED, {**agency.EXAMPLES[agency.CREDIT_LISTED], "uscc": uscc, "listing": listing,
                                  "listed_on": date.today().isoformat(), **extra}


def lifted(uscc: str, listing: str, **extra: Any) -> tuple[str, dict[str, Any]]:
    return agency.CREDIT_LIFTED, {**agency.EXAMPLES[agency.CREDIT_LIFTED], "uscc": uscc, "listing": listing,
                                  "lifted_on": date.today().isoformat(), **extra}


def unmet(evaluation: Any) -> set[str]:
    """The condition codes the stored explanation reports unmet (its ``unmet`` lines are ``code: text``)."""
    return {line.split(":", 1)[0] for line in evaluation.explanation["unmet"]}


async def submit(client: Any, uscc: str) -> Any:
    return await client.post("/api/v1/applications", json={"uscc": uscc, "tier": "srdi", "batch_year": 2026},
                             headers=auth("enterprise", "330110", uscc=uscc))


async def test_listing_blocks_lifting_restores_for_new_applications_only(
    sfs: dict[str, async_sessionmaker[AsyncSession]], engines: dict[str, AsyncEngine], bootstrap: str
) -> None:
    sf, ev = sfs["evaluation"], engines["evaluation"]
    topic = harness_topic(agency.TOPIC)
    anomaly, dishonest, legacy = new_uscc(), new_uscc(), new_uscc()
    await eval_enterprise(sf, anomaly)
    title = await eval_enterprise(sf, dishonest, title_from=date(2025, 6, 1))
    await eval_enterprise(sf, legacy)
    async with running_service("evaluation", consumer=True) as (_, client):
        # a malformed message first (an unknown listing): dead-lettered, the next ones applied
        await agency_producer.produce(bootstrap, [], topic=topic, raw=[
            (anomaly.encode(), b'{"uscc":"' + anomaly.encode() + b'","listing":"blacklist"}',
             [(k, v) for k, v in agency_producer.record(*listed(anomaly, "abnormal_operation"), "/agency/x")[2]])])
        await agency_producer.produce(bootstrap, [
            listed(anomaly, "abnormal_operation"),
            listed(dishonest, "serious_dishonesty", agency=CREDIT, reason="拒不履行法院判决,列入失信被执行人",
                   decision_no="浙信〔2026〕17号"),
            (agency.LISTING_RECORDED, {"uscc": legacy, "region_code": "330110", "listing": "abnormal_operation",
                                       "agency": AGENCY, "recorded_on": date.today().isoformat(),
                                       "evidence": "通过登记的住所无法联系"}),
        ], topic=topic, source="/agency/credit-zj")

        async def applied() -> bool:
            return await one(ev, "SELECT count(*) FROM evaluation.credit_listings") == 3 and all(
                [(await latest_eval(sf, u)) is not None for u in (anomaly, dishonest, legacy)])

        await wait_for(applied, timeout=30, what="credit listings applied")
        for u, condition in ((anomaly, "no_abnormal_operation"), (dishonest, "no_serious_dishonesty"),
                             (legacy, "no_abnormal_operation")):
            e = await latest_eval(sf, u)
            assert e.eligible is False and e.trigger == "credit", u
            assert unmet(e) == {condition}, (u, e.explanation)
        # 经营异常 blocks new applications, revokes nothing; 严重失信 revokes the title (configured ground)
        r = await submit(client, anomaly)
        assert r.status_code == 409 and "经营异常名录" in r.json()["detail"], r.text
        recs = await rows(ev, "SELECT id, status, revoke_ground, revoke_evidence FROM evaluation.recognitions")
        assert [(str(x["id"]), x["status"], x["revoke_ground"]) for x in recs] == [
            (str(title), "revoked", "serious_dishonesty")]
        assert CREDIT in recs[0]["revoke_evidence"] and "浙信〔2026〕17号" in recs[0]["revoke_evidence"]
        revoked = await rows(ev, "SELECT payload FROM evaluation.outbox WHERE type = 'zjtx.evaluation.tier.revoked.v1'")
        assert [p["payload"]["recognition_id"] for p in revoked] == [str(title)]
        audit = {(a["actor"], a["action"], a["object_id"]) for a in await rows(
            ev, "SELECT actor, action, object_id FROM evaluation.audit_log")}
        assert (f"agency:{AGENCY}", "credit.listed", anomaly) in audit
        assert (f"agency:{CREDIT}", "recognition.revoke", str(title)) in audit

        # lifting: eligible again for new applications; the revoked title stays revoked
        await agency_producer.produce(bootstrap, [
            lifted(anomaly, "abnormal_operation"), lifted(dishonest, "serious_dishonesty", agency=CREDIT),
        ], topic=topic)

        async def restored() -> bool:
            return await one(ev, "SELECT count(*) FROM evaluation.credit_listings WHERE lifted_on IS NOT NULL") == 2

        await wait_for(restored, timeout=30, what="listings lifted")
        for u in (anomaly, dishonest):
            assert (await latest_eval(sf, u)).eligible is True, u
        assert (await submit(client, anomaly)).status_code == 201
        assert (await submit(client, dishonest)).status_code == 201
        assert await one(ev, "SELECT status FROM evaluation.recognitions WHERE id = :i", i=title) == "revoked"
        assert (await submit(client, legacy)).status_code == 409  # still listed
    dlq = await read_topic(agency.TOPIC + ".dlq", 1, timeout=15)
    assert len(dlq) == 1 and "listing" in dict(dlq[0].headers)["dlq_error"].decode()


async def test_reevaluation_job_applies_the_listings(sfs: dict[str, async_sessionmaker[AsyncSession]]) -> None:
    """A rule set's re-evaluation job (the bulk path) sees the agencies' listings as evaluate_and_store does."""
    import uuid

    from services.evaluation.app import credit
    from services.evaluation.app.reevaluation import start_reevaluation
    from services.evaluation.db.models import Job

    sf = sfs["evaluation"]
    clean, listed_now, lifted_again = new_uscc(), new_uscc(), new_uscc()
    for u in (clean, listed_now, lifted_again):
        await eval_enterprise(sf, u)
    async with sf() as s, s.begin():
        await credit.listed(s, uscc=listed_now, region_code="330110", agency=AGENCY, listing="abnormal_operation",
                            listed_on=date(2026, 1, 5), reason="未按规定公示年度报告", decision_no=None)
        await credit.listed(s, uscc=lifted_again, region_code="330110", agency=AGENCY,
                            listing="abnormal_operation", listed_on=date(2026, 1, 5), reason="未按规定公示年度报告",
                            decision_no=None)
        await credit.lifted(s, uscc=lifted_again, region_code="330110", agency=AGENCY, listing="abnormal_operation",
                            lifted_on=date(2026, 2, 1), reason="已补报")
        job_id = uuid.uuid4()
        s.add(Job(id=job_id, kind="reevaluate", ruleset_id="A-srdi", status="queued", requested_by="test"))
    await start_reevaluation(sf, job_id, "A-srdi", batch_size=2, workers=0)
    for u, eligible in ((clean, True), (listed_now, False), (lifted_again, True)):
        e = await latest_eval(sf, u)
        assert e.trigger == "reevaluation" and e.eligible is eligible, u
    assert unmet(await latest_eval(sf, listed_now)) == {"no_abnormal_operation"}


async def test_a_listing_during_the_procedure_blocks_the_announcement(
    sfs: dict[str, async_sessionmaker[AsyncSession]]
) -> None:
    from services.evaluation.app import credit
    from tests.evaluation.test_workflow_api import PROVINCE, to_publicity

    sf = sfs["evaluation"]
    uscc = new_uscc()
    await eval_enterprise(sf, uscc)
    async with running_service("evaluation") as (_, client):
        app = await to_publicity(client, uscc)
        day = (date.fromisoformat(app["publicity_ends_on"]) + timedelta(days=1)).isoformat()
        async with sf() as s, s.begin():
            await credit.listed(s, uscc=uscc, region_code="330110", agency=AGENCY, listing="abnormal_operation",
                                listed_on=date.fromisoformat(app["publicity_ends_on"]), reason="住所无法联系",
                                decision_no=None)
        r = await client.post(f"/api/v1/applications/{app['id']}/announce", json={"announced_on": day},
                              headers=PROVINCE)
        assert r.status_code == 409 and "经营异常名录" in r.json()["detail"] and "不能公告认定" in r.json()["detail"]
        async with sf() as s, s.begin():
            await credit.lifted(s, uscc=uscc, region_code="330110", agency=AGENCY, listing="abnormal_operation",
                                lifted_on=date.fromisoformat(app["publicity_ends_on"]), reason="已移出")
        r = await client.post(f"/api/v1/applications/{app['id']}/announce", json={"announced_on": day},
                              headers=PROVINCE)
        assert r.status_code == 200, r.text
