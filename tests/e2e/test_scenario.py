"""The whole user journey across the four services, over the real broker and PostgreSQL.

registry → (indicators.reported) → evaluation → (tier.recognised) → registry read model, finance entitlements,
notification commissioner + notices; finance → (entitlement.approved, disbursement.paid) → notification.

Everything is driven through the HTTP APIs with role tokens; the only non-HTTP knob is the evaluation
decision date (``ZJTX_EVAL_AS_OF``), moved forward between the ladder steps so that each title is valid on the
day the next one is decided (innovative → srdi → little_giant, decision 6 prerequisites).
Outbound adapters are the local fakes as real servers: payment gateway (HTTP), SMS gateway (HTTP), SMTP.
"""

from __future__ import annotations

import contextlib
import random
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from services.finance.app import payments
from services.finance.demo import load_demo as load_finance_demo
from services.notification.demo import load_demo as load_notification_demo
from services.notification.fake_providers import Mailbox, running_providers
from services.registry.db.seed import region_rows, upsert_regions_stmt
from services.registry.domain.uscc import make_uscc
from shared.events.catalog import SERVICES
from shared.infra import free_port
from tests.finance.gateway import GatewayServer
from tests.harness import auth, engine_for, running_service, settings, truncate_schema, wait_for

pytestmark = pytest.mark.e2e

COUNTY = auth("county_official", "330110")
CITY = auth("city_official", "330100")
PROVINCE = auth("province_official", "330000")
PROVINCE_B = auth("province_official", "330000", sub="province-330000-b")  # one person, one review step
COUNTY_NOMINATOR = auth("county_official", "330110", sub="county-330110-nominator")  # not its reviewer
COUNTY_CM = "cm-330110-1"  # services.notification.demo: one commissioner per demo area at small sizes
CITY_CM = "cm-330100-1"
TIMEOUT = 30.0
# The first decision date (a Monday): MIIT-2026-2 rule sets and the seeded 2026 policies and budgets are in force
# throughout the journey (publicity 5 working days, announcement the day after: 11-14, 11-21, 11-28).
FIRST_DECISION = date(2026, 11, 9)
BATCH_YEAR = 2026

# Qualifies for MIIT-2026-2 innovative (direct route + 75 points), srdi (all conditions, given a valid
# innovative title) and little_giant (all 7 indicators, given a valid srdi title) — the base enterprise of
# services/evaluation/rulesets/cases/MIIT-2026-2-little_giant.yaml.
INDICATORS: dict[str, Any] = {
    "niche_years": "8",
    "operating_revenue": "150000000",
    "operating_revenue_prev1": "130000000",
    "operating_revenue_prev2": "120000000",
    "main_business_revenue": "140000000",
    "main_business_revenue_prev1": "120000000",
    "main_business_revenue_prev2": "105000000",
    "total_assets": "100000000",
    "total_liabilities": "50000000",
    "net_profit": "15000000",
    "rd_expense": "6000000",
    "rd_expense_prev1": "6500000",
    "rd_staff": 30,
    "employees": 150,
    "rd_institution_level": "province",
    "ip_class1": 4,
    "ip_class1_applied": 4,
    "market_share_pct": "12",
    "chain_key_role": True,
    "six_foundations": True,
    "digital_level": 3,
    "quality_system_certified": True,
    "own_brand": True,
    "zj_key_industry": "1",
    "abnormal_operation": False,
    "serious_dishonesty": False,
    "major_accident_3y": False,
}


def enterprise_token(uscc: str) -> dict[str, str]:
    return auth("enterprise", "330110", uscc=uscc)


def commissioner_token(cid: str, region: str) -> dict[str, str]:
    return auth("commissioner", region, sub=cid)


async def _clean_all() -> None:
    for service in SERVICES:
        engine = engine_for(service)
        try:
            await truncate_schema(engine, service)
            if service == "registry":
                async with engine.begin() as conn:
                    await conn.execute(upsert_regions_stmt(), region_rows())
        finally:
            await engine.dispose()


@contextlib.asynccontextmanager
async def stack() -> AsyncIterator[tuple[dict[str, httpx.AsyncClient], GatewayServer, Mailbox]]:
    """Four services in-process, each with relay and consumer, plus the fake gateway / SMS / SMTP servers."""
    await _clean_all()
    await load_finance_demo(settings("finance"), 10)
    await load_notification_demo(settings("notification"), 10)
    gateway = GatewayServer().start()
    sms_port, smtp_port = free_port(), free_port()
    try:
        async with contextlib.AsyncExitStack() as es:
            box = await es.enter_async_context(running_providers(sms_port, smtp_port))
            outbound = {
                "payment_gateway_url": gateway.url,
                "sms_gateway_url": f"http://127.0.0.1:{sms_port}",
                "smtp_host": "127.0.0.1",
                "smtp_port": smtp_port,
            }
            clients: dict[str, httpx.AsyncClient] = {}
            for service in SERVICES:
                _, client = await es.enter_async_context(
                    running_service(service, relay=True, consumer=True, **outbound)
                )
                clients[service] = client
            yield clients, gateway, box
    finally:
        gateway.stop()


# ------------------------------------------------------------------ helpers


async def report_indicators(reg: httpx.AsyncClient, uscc: str, year: int, employees: int) -> None:
    """Report (or re-report, a new revision) the year's indicators as the county official."""
    body = {"indicators": {**INDICATORS, "employees": employees}}
    r = await reg.put(f"/api/v1/enterprises/{uscc}/indicators/{year}", json=body, headers=COUNTY)
    assert r.status_code == 200, r.text


async def wait_eligible(ev: httpx.AsyncClient, uscc: str, tier: str, as_of: date) -> dict[str, Any]:
    found: dict[str, Any] = {}

    async def check() -> bool:
        r = await ev.get(f"/api/v1/enterprises/{uscc}/evaluations", headers=COUNTY)
        if r.status_code != 200:
            return False
        for item in r.json()["items"]:
            if item["tier"] == tier and item["as_of"] == as_of.isoformat() and item["ruleset_id"].startswith(
                "MIIT-2026-2"
            ):
                found.clear()
                found.update(item)
                return True
        return False

    await wait_for(check, timeout=TIMEOUT, what=f"evaluation of {tier} as of {as_of}")
    assert found["eligible"] is True, found
    assert found["explanation"], found
    return found


async def recognise(
    ev: httpx.AsyncClient, uscc: str, tier: str, applicant: dict[str, str], batch_year: int
) -> tuple[dict[str, Any], date]:
    """Submit → reviews (county → city → province [→ national]) → publicity → announce the day after it ends."""
    r = await ev.post("/api/v1/applications", json={"uscc": uscc, "tier": tier, "batch_year": batch_year},
                      headers=applicant)
    assert r.status_code == 201, r.text
    app = r.json()
    assert app["state"] == "submitted"
    stages = [("county", COUNTY, "county_approved"), ("city", CITY, "city_approved")]
    if app["level"] == "national":
        stages += [("province", PROVINCE, "province_recommended"), ("national", PROVINCE_B, "publicity")]
    else:
        stages += [("province", PROVINCE, "publicity")]
    for stage, headers, state in stages:
        r = await ev.post(f"/api/v1/applications/{app['id']}/reviews",
                          json={"stage": stage, "decision": "approved", "comment": f"{stage} 同意"}, headers=headers)
        assert r.status_code == 200, (stage, r.text)
        assert r.json()["state"] == state, (stage, r.json())
    ends = date.fromisoformat(r.json()["publicity_ends_on"])
    announced_on = ends + timedelta(days=1)
    r = await ev.post(f"/api/v1/applications/{app['id']}/announce", json={"announced_on": announced_on.isoformat()},
                      headers=PROVINCE)
    assert r.status_code == 200, r.text
    rec: dict[str, Any] = r.json()["recognition"]
    assert rec["tier"] == tier and rec["uscc"] == uscc
    assert rec["valid_from"] == announced_on.isoformat()
    assert rec["valid_to"] == (announced_on.replace(year=announced_on.year + 3) - timedelta(days=1)).isoformat()
    return rec, announced_on


async def wait_registry_tier(reg: httpx.AsyncClient, uscc: str, rec: dict[str, Any]) -> None:
    async def check() -> bool:
        r = await reg.get(f"/api/v1/enterprises/{uscc}", headers=COUNTY)
        assert r.status_code == 200, r.text
        return any(
            t["recognition_id"] == rec["id"] and t["tier"] == rec["tier"] and t["valid_from"] == rec["valid_from"]
            and t["valid_to"] == rec["valid_to"]
            for t in r.json()["current_tiers"]
        )

    await wait_for(check, timeout=TIMEOUT, what=f"registry shows {rec['tier']} as a current tier")


async def wait_commissioner(nt: httpx.AsyncClient, uscc: str, cid: str, level: str) -> dict[str, Any]:
    out: dict[str, Any] = {}

    async def check() -> bool:
        r = await nt.get(f"/api/v1/enterprises/{uscc}/commissioner", headers=COUNTY)
        if r.status_code != 200:
            return False
        body = r.json()
        if (body.get("commissioner") or {}).get("id") != cid:
            return False
        out.update(body)
        return True

    await wait_for(check, timeout=TIMEOUT, what=f"commissioner {cid} assigned")
    assert out["level"] == level, out
    return out


async def entitlements_for(fin: httpx.AsyncClient, uscc: str, recognition_subject: str, n: int) -> dict[str, Any]:
    """Wait for ``n`` entitlements of the subject (e.g. ``tier:srdi:province``); return them by jurisdiction."""
    rows: dict[str, Any] = {}

    async def check() -> bool:
        r = await fin.get(f"/api/v1/enterprises/{uscc}/entitlements", headers=PROVINCE)
        if r.status_code == 404:  # none yet: finance knows where an enterprise is from its entitlements
            return False
        assert r.status_code == 200, r.text
        rows.clear()
        rows.update({e["jurisdiction"]: e for e in r.json() if e["subject"] == recognition_subject})
        return len(rows) >= n

    await wait_for(check, timeout=TIMEOUT, what=f"{n} entitlements for {recognition_subject}")
    assert len(rows) == n, rows
    return rows


async def inbox(nt: httpx.AsyncClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    r = await nt.get("/api/v1/notifications?limit=200", headers=headers)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def wait_notice(nt: httpx.AsyncClient, headers: dict[str, str], template: str, contains: str) -> dict[str, Any]:
    """Wait for an inbox notice of ``template`` whose body contains ``contains``, sent by SMS and email."""
    found: dict[str, Any] = {}

    async def check() -> bool:
        for n in await inbox(nt, headers):
            if n["template_code"] == template and contains in n["body"]:
                found.clear()
                found.update(n)
                sent = {d["channel"] for d in n["deliveries"] if d["status"] == "sent"}
                return sent == {"sms", "email"}
        return False

    await wait_for(check, timeout=TIMEOUT, what=f"{template} notice containing {contains!r} delivered")
    return found


def assert_once_by_sms_and_email(box: Mailbox, notice: dict[str, Any], mobile: str, email: str) -> None:
    sms = [m for m in box.sms_to(mobile) if m["text"].endswith(notice["body"])]
    mails = [m for m in box.emails_to(email) if m["body"] == notice["body"]]
    assert len(sms) == 1, (notice, box.sms_to(mobile))
    assert len(mails) == 1, (notice, box.emails_to(email))
    assert mails[0]["subject"].endswith(notice["title"])


async def assert_every_notice_once(
    nt: httpx.AsyncClient, box: Mailbox, headers: dict[str, str], mobile: str, email: str, uscc: str,
    exclusive: bool = False,
) -> list[dict[str, Any]]:
    """Every notice of this inbox about ``uscc`` went out exactly once by SMS and by email; with ``exclusive``
    (an address only this enterprise uses) nothing else was sent to it either."""
    notices: list[dict[str, Any]] = []

    async def settled() -> bool:
        notices[:] = [n for n in await inbox(nt, headers) if n["uscc"] == uscc]
        return all(
            {d["channel"] for d in n["deliveries"] if d["status"] == "sent"} == {"sms", "email"} for n in notices
        )

    await wait_for(settled, timeout=TIMEOUT, what="every notice delivered by SMS and email")
    for n in notices:
        assert_once_by_sms_and_email(box, n, mobile, email)
    if exclusive:
        assert len(box.sms_to(mobile)) == len(notices), (notices, box.sms_to(mobile))
        assert len(box.emails_to(email)) == len(notices)
    return notices


# ------------------------------------------------------------------ the journey


async def test_registration_to_recognition_payment_and_notices(monkeypatch: pytest.MonkeyPatch) -> None:
    batch_year = BATCH_YEAR
    reporting_year = batch_year - 1
    # decision dates: each step is decided on the day the previous title became valid
    first_decision = FIRST_DECISION
    monkeypatch.setenv("ZJTX_EVAL_AS_OF", first_decision.isoformat())
    monkeypatch.setattr(payments, "CONFIG", payments.WorkerConfig(poll_interval=0.2, backoff_base=0.2))

    rng = random.Random()
    uscc = make_uscc("330110", "".join(rng.choice("0123456789") for _ in range(8)))
    name = f"杭州余杭精密传感科技有限公司{uuid.uuid4().hex[:4]}"
    liaison_mobile = "138" + "".join(rng.choice("0123456789") for _ in range(8))
    liaison_email = f"liaison-{uuid.uuid4().hex[:8]}@yuhang-sensor.example.cn"

    async with stack() as (c, gateway, box):
        reg, ev, fin, nt = c["registry"], c["evaluation"], c["finance"], c["notification"]

        async def rulesets_stored() -> bool:
            r = await ev.get("/api/v1/rulesets", headers=PROVINCE)
            return r.status_code == 200 and "MIIT-2026-2-little_giant" in r.text

        await wait_for(rulesets_stored, timeout=TIMEOUT, what="shipped rule sets stored")

        # ---- 1. the county registers the enterprise with its liaison and reports indicators
        r = await reg.post("/api/v1/enterprises", headers=COUNTY, json={
            "uscc": uscc, "name": name, "region_code": "330110", "industry_code": "3562",
            "founded_on": "2012-05-01", "scale": "medium",
            "liaison": {"name": "张联络", "mobile": liaison_mobile, "email": liaison_email},
        })
        assert r.status_code == 201, r.text
        await report_indicators(reg, uscc, reporting_year, employees=150)
        innovative_eval = await wait_eligible(ev, uscc, "innovative", first_decision)
        # stored, explained results for every tier of the rule sets in force; the higher rungs wait for titles
        items = (await ev.get(f"/api/v1/enterprises/{uscc}/evaluations", headers=enterprise_token(uscc))).json()
        ladder = {i["tier"]: i for i in items["items"] if i["ruleset_id"].startswith("MIIT-2026-2")}
        assert set(ladder) == {"innovative", "srdi", "little_giant"}, items
        assert all(i["explanation"] for i in items["items"])
        assert ladder["srdi"]["eligible"] is False  # no innovative title yet (prerequisite)
        assert ladder["little_giant"]["eligible"] is False
        assert innovative_eval["ruleset_id"] == "MIIT-2026-2-innovative"

        # ---- 2a. the enterprise applies for 科技和创新型 → county → city → province → publicity → announce
        innovative, innovative_on = await recognise(ev, uscc, "innovative", enterprise_token(uscc), batch_year)
        await wait_registry_tier(reg, uscc, innovative)
        await wait_commissioner(nt, uscc, COUNTY_CM, "county")

        # ---- 2b. srdi: decided once the innovative title is valid; the county nominates
        monkeypatch.setenv("ZJTX_EVAL_AS_OF", innovative_on.isoformat())
        await report_indicators(reg, uscc, reporting_year, employees=151)
        await wait_eligible(ev, uscc, "srdi", innovative_on)
        srdi, srdi_on = await recognise(ev, uscc, "srdi", COUNTY_NOMINATOR, batch_year)
        await wait_registry_tier(reg, uscc, srdi)

        # finance: 余杭 (county) and 杭州 programme (city) tier rewards, with explanations; nothing for innovative
        ents = await entitlements_for(fin, uscc, "tier:srdi:province", 2)
        assert set(ents) == {"330110", "330100"}
        assert ents["330110"]["amount"] == "200000.00" and ents["330100"]["amount"] == "500000.00"
        for e in ents.values():
            assert e["status"] == "pending" and e["created_by"] == "system" and e["year"] == batch_year
            assert e["explanation"]["steps"], e
        all_ents = (await fin.get(f"/api/v1/enterprises/{uscc}/entitlements", headers=PROVINCE)).json()
        assert not [e for e in all_ents if e["subject"].startswith("tier:innovative")]

        # maker-checker: the creator (system) is not the approver; only 余杭 officials approve 余杭's money
        county_ent = ents["330110"]
        r = await fin.post(f"/api/v1/entitlements/{county_ent['id']}/approve",
                           headers=CITY | {"Idempotency-Key": "e2e-approve-city"}, json={"comment": "x"})
        assert r.status_code == 403, r.text
        approver = auth("county_official", "330110", sub="finance-officer-yh")
        r = await fin.post(f"/api/v1/entitlements/{county_ent['id']}/approve",
                           headers=approver | {"Idempotency-Key": "e2e-approve-yh"}, json={"comment": "同意兑现"})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "approved" and r.json()["decided_by"] == "finance-officer-yh"

        async def paid() -> bool:
            r = await fin.get(f"/api/v1/entitlements/{county_ent['id']}", headers=COUNTY)
            return r.json()["status"] == "paid"

        await wait_for(paid, timeout=TIMEOUT, what="the disbursement worker pays the approved entitlement")
        payments_to_us = [p for p in gateway.gw.payments.values() if p["payee_uscc"] == uscc]
        assert len(payments_to_us) == 1 and Decimal(payments_to_us[0]["amount"]) == Decimal("200000.00")
        assert sum(gateway.gw.calls.values()) >= 1

        r = await fin.get(f"/api/v1/ledger?jurisdiction=330110&year={batch_year}", headers=COUNTY)
        assert r.status_code == 200, r.text
        ledger = r.json()
        pay_lines = [
            ln for ln in ledger["lines"] if ln["entitlement_id"] == county_ent["id"] and ln["movement"] == "pay"
        ]
        assert len(pay_lines) == 2 and {ln["debit"] for ln in pay_lines} >= {"200000.00"}, pay_lines
        assert ledger["balanced"] is True
        r = await fin.get(f"/api/v1/budgets?jurisdiction=330110&fund=sme_development&year={batch_year}",
                          headers=COUNTY)
        assert r.status_code == 200, r.text
        [budget] = r.json()
        assert budget["spent"] == "200000.00" and budget["reserved"] == "0.00", budget
        assert Decimal(budget["available"]) == Decimal(budget["total"]) - Decimal("200000.00")

        r = await fin.get(f"/api/v1/enterprises/{uscc}/entitlements", headers=enterprise_token(uscc))
        assert r.status_code == 200, r.text
        mine = {e["id"]: e for e in r.json()}
        assert mine[county_ent["id"]]["status"] == "paid"
        assert (mine[county_ent["id"]]["disbursement"] or {}).get("state") == "paid", mine[county_ent["id"]]

        # notification: county commissioner for innovative/srdi; liaison and commissioner told, once each
        cm_headers = commissioner_token(COUNTY_CM, "330110")
        ent_headers = enterprise_token(uscc)
        told_liaison = await wait_notice(nt, ent_headers, "commissioner_assigned_enterprise", "县级服务专员")
        told_cm = await wait_notice(nt, cm_headers, "commissioner_assigned_commissioner", uscc)
        cm_row = (await nt.get(f"/api/v1/commissioners/{COUNTY_CM}", headers=COUNTY)).json()
        assert cm_row["name"] in told_liaison["body"]
        await wait_notice(nt, ent_headers, "tier_recognised", "专精特新中小企业")
        await wait_notice(nt, ent_headers, "tier_recognised", "创新型中小企业")
        await wait_notice(nt, ent_headers, "entitlement_approved", "200000.00")
        await wait_notice(nt, ent_headers, "disbursement_paid", "200000.00")
        assert_once_by_sms_and_email(box, told_liaison, liaison_mobile, liaison_email)
        assert_once_by_sms_and_email(box, told_cm, cm_row["mobile"], cm_row["email"])
        # 精准推送: finance's published srdi reward policies of 余杭 and 杭州 reach the enterprise
        for policy_name in ("余杭区更高层级认定一次性奖励", "市专精特新企业新认定一次性奖励"):
            await wait_notice(nt, ent_headers, "policy_push", policy_name)

        # ---- 3. promotion to 小巨人: the enterprise applies; national result recorded by the province
        monkeypatch.setenv("ZJTX_EVAL_AS_OF", srdi_on.isoformat())
        await report_indicators(reg, uscc, reporting_year, employees=152)
        await wait_eligible(ev, uscc, "little_giant", srdi_on)
        giant, _ = await recognise(ev, uscc, "little_giant", enterprise_token(uscc), batch_year)
        assert giant["level"] == "national"
        await wait_registry_tier(reg, uscc, giant)

        # commissioner moves to the city; the liaison, the new and the old commissioner are told
        await wait_commissioner(nt, uscc, CITY_CM, "city")
        city_cm_row = (await nt.get(f"/api/v1/commissioners/{CITY_CM}", headers=CITY)).json()
        moved = await wait_notice(nt, ent_headers, "commissioner_assigned_enterprise", "市级服务专员")
        assert city_cm_row["name"] in moved["body"] and cm_row["name"] in moved["body"]
        new_cm = await wait_notice(nt, commissioner_token(CITY_CM, "330100"), "commissioner_assigned_commissioner",
                                   uscc)
        released = await wait_notice(nt, cm_headers, "commissioner_released", uscc)
        city_headers = commissioner_token(CITY_CM, "330100")
        served = await nt.get(f"/api/v1/commissioners/{CITY_CM}/enterprises", headers=city_headers)
        assert served.status_code == 200 and [e["uscc"] for e in served.json()] == [uscc], served.text
        served = await nt.get(f"/api/v1/commissioners/{COUNTY_CM}/enterprises", headers=cm_headers)
        assert served.status_code == 200 and served.json() == [], served.text
        r = await reg.get(f"/api/v1/enterprises/{uscc}", headers=ent_headers)
        assert r.status_code == 200, r.text
        assert {t["tier"] for t in r.json()["current_tiers"]} == {"innovative", "srdi", "little_giant"}
        assert_once_by_sms_and_email(box, moved, liaison_mobile, liaison_email)
        assert_once_by_sms_and_email(box, new_cm, city_cm_row["mobile"], city_cm_row["email"])
        assert_once_by_sms_and_email(box, released, cm_row["mobile"], cm_row["email"])

        # finance: 从高不重复 — the city programme pays only the difference to the srdi reward it already granted
        giant_ents = await entitlements_for(fin, uscc, "tier:little_giant:national", 3)
        assert set(giant_ents) == {"330000", "330100", "330110"}
        assert giant_ents["330100"]["amount"] == "1500000.00", giant_ents["330100"]
        assert giant_ents["330110"]["amount"] == "300000.00", giant_ents["330110"]
        assert giant_ents["330000"]["amount"] == "300000.00", giant_ents["330000"]
        assert giant_ents["330100"]["explanation"]["steps"]
        await wait_notice(nt, ent_headers, "policy_push", "省级认定奖励")

        # in the end: every notice of each inbox went out exactly once by SMS and by email
        for headers, mobile, email, exclusive in (
            (ent_headers, liaison_mobile, liaison_email, True),
            (cm_headers, cm_row["mobile"], cm_row["email"], False),
            (commissioner_token(CITY_CM, "330100"), city_cm_row["mobile"], city_cm_row["email"], False),
        ):
            notices = await assert_every_notice_once(nt, box, headers, mobile, email, uscc, exclusive)
            assert notices
        # and the gateway paid once, for the one approved entitlement
        assert len([p for p in gateway.gw.payments.values() if p["payee_uscc"] == uscc]) == 1
