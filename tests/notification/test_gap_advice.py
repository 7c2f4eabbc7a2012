"""精准服务 gap advice through the real broker and PostgreSQL: an enterprise near a tier gets the gap in yuan and
the reward of its county's, city's and province's policies once per tier and year (SMS only on opt-in), and its
commissioner lists it."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notification.db.models import gap_advices, policy_rewards
from services.notification.fake_providers import Mailbox
from tests.harness import auth, wait_for
from tests.notification.conftest import apply, event, recognised, registered, uscc
from tests.notification.test_flow import add_commissioner, produce, settled, stack  # noqa: F401 (fixture)

MOBILE = "13900000077"
EMAIL = "liaison77@example.cn"
COMPLETED = "zjtx.evaluation.evaluation.completed.v1"
PUBLISHED = "zjtx.finance.policy.published.v1"


def policy(pid: str, jurisdiction: str, rewards: list[dict[str, Any]], effective_to: str = "2030-12-31") -> Any:
    return event(PUBLISHED, jurisdiction, {
        "policy_id": pid, "name": f"{jurisdiction}专精特新认定奖励", "jurisdiction": jurisdiction,
        "kind": "tier_reward", "tiers": sorted({r["tier"] for r in rewards}), "effective_from": "2022-01-01",
        "effective_to": effective_to, "summary": "一次性奖励", "rewards": rewards,
    }, jurisdiction)


def rd_gap(yuan: str) -> dict[str, Any]:
    return {"code": "srdi.rd", "metric": "rd_ratio", "unit": "ratio", "current": "2.10%", "required": "≥ 3%",
            "shortfall": "0.009", "yuan_needed": yuan,
            "description": f"研发费用占营业收入比重 2.10% → 3%: 差0.9个百分点, 按当前数据需增加研发费用 ¥{yuan}"}


def completed(u: str, region: str, year: int, results: list[dict[str, Any]]) -> Any:
    return event(COMPLETED, u, {"uscc": u, "region_code": region, "year": year, "as_of": "2026-11-20",
                                "results": results}, region)


SRDI_NEAR = {"ruleset_id": "ZJ-2026-province-srdi", "tier": "srdi", "level": "province", "eligible": False,
             "score": None, "unmet": 1, "gaps": [rd_gap("600000.00")]}
SRDI_COUNTY_FAR = {"ruleset_id": "YH-2022-district-srdi", "tier": "srdi", "level": "county", "eligible": False,
                   "score": None, "unmet": 2, "gaps": [rd_gap("800000.00"), {
                       "code": "srdi.age", "description": "成立年限: 不满3年", "required": "≥ 3年"}]}
LITTLE_GIANT_FAR = {"ruleset_id": "MIIT-2026-little-giant", "tier": "little_giant", "level": "national",
                    "eligible": False, "score": None, "unmet": 1, "gaps": [rd_gap("5000000.00")]}


async def test_near_enterprise_is_advised_once_per_tier_and_year_and_listed_for_its_commissioner(
    stack: tuple[httpx.AsyncClient, Any, Mailbox], sf: async_sessionmaker[AsyncSession]  # noqa: F811
) -> None:
    client, producer, box = stack
    await add_commissioner(client, "cm-yh-00000077", "330110", "county")
    await add_commissioner(client, "cm-yh-00000078", "330110", "county", capacity=1)
    u = uscc("330110")
    await produce(producer, registered(u, "330110", "杭州余杭差一点科技有限公司", MOBILE, EMAIL))
    await produce(producer, recognised(u, "330110", "innovative", level="county"))

    async def assigned() -> bool:
        r = await client.get(f"/api/v1/enterprises/{u}/commissioner", headers=auth("county_official", "330110"))
        return r.status_code == 200 and r.json().get("status") == "assigned"
    await wait_for(assigned, what="county commissioner assigned")
    cid = (await client.get(f"/api/v1/enterprises/{u}/commissioner",
                            headers=auth("county_official", "330110"))).json()["commissioner"]["id"]
    other = "cm-yh-00000078" if cid == "cm-yh-00000077" else "cm-yh-00000077"

    # rewards of the county, the city and the province; an expired one and another county's do not count
    await produce(producer, policy("yh-srdi", "330110", [{"tier": "srdi", "level": "province", "amount": "200000.00"}]))
    await produce(producer, policy("hz-srdi", "330100", [{"tier": "srdi", "level": "province", "amount": "500000.00"},
                                                         {"tier": "little_giant", "level": "national",
                                                          "amount": "2000000.00"}]))
    await produce(producer, policy("zj-srdi", "330000", [{"tier": "srdi", "level": None, "amount": "300000.00"}]))
    await produce(producer, policy("hz-old", "330100", [{"tier": "srdi", "level": "province",
                                                         "amount": "900000.00"}], effective_to="2024-12-31"))
    await produce(producer, policy("xs-srdi", "330109", [{"tier": "srdi", "level": "province",
                                                          "amount": "700000.00"}]))

    async def rewards_known() -> bool:
        async with sf() as s:
            return len((await s.execute(select(policy_rewards))).all()) == 6
    await wait_for(rewards_known, what="policy rewards read model")
    await settled(box, sf, sms=3, emails=3)  # the title and assignment notices to the enterprise and commissioner
    box.clear()

    # near for 省级专精特新 (one money gap of ¥600,000), far from 小巨人 (¥5,000,000); delivered twice, and a
    # second evaluation of the same year changes nothing
    first = completed(u, "330110", 2025, [SRDI_NEAR, SRDI_COUNTY_FAR, LITTLE_GIANT_FAR])
    await produce(producer, first, times=2)
    await produce(producer, completed(u, "330110", 2025, [{**SRDI_NEAR, "gaps": [rd_gap("400000.00")]}]))

    ent = auth("enterprise", "330110", uscc=u)

    async def advised() -> bool:
        r = await client.get("/api/v1/notifications", headers=ent)
        return any(i["template_code"] == "gap_advice" for i in r.json()["items"])
    await wait_for(advised, what="gap advice in the enterprise's inbox")
    await wait_for(lambda: _count(sf, u, 2025, expected=1), what="advice recorded once")  # type: ignore[arg-type]
    items = [i for i in (await client.get("/api/v1/notifications", headers=ent)).json()["items"]
             if i["template_code"] == "gap_advice"]
    assert len(items) == 1
    body = items[0]["body"]
    assert "研发费用再增加 ¥600,000 即满足省级专精特新中小企业的研发投入条件" in body
    assert "合计约 ¥1,000,000" in body  # 200,000 county + 500,000 city + 300,000 province
    assert "¥900,000" not in body and "¥700,000" not in body and "小巨人" not in body
    assert items[0]["deliveries"] == []  # inbox only: the enterprise did not opt in to SMS

    # its commissioner lists it, and is told in the inbox (no SMS or e-mail for that either)
    mine = await client.get(f"/api/v1/commissioners/{cid}/near-qualifying",
                            headers=auth("commissioner", "330110", sub=cid))
    assert mine.status_code == 200
    assert [(r["uscc"], r["tier"], r["year"], r["unmet"], r["yuan_gap"], r["reward"]) for r in mine.json()] == [
        (u, "srdi", 2025, 1, "600000.00", "1000000.00")]
    assert mine.json()[0]["tier_name"] == "省级专精特新中小企业"
    cm_inbox = (await client.get("/api/v1/notifications", headers=auth("commissioner", "330110", sub=cid))).json()
    assert [i["template_code"] for i in cm_inbox["items"]].count("gap_advice_commissioner") == 1
    official = await client.get(f"/api/v1/commissioners/{cid}/near-qualifying?year=2025",
                                headers=auth("county_official", "330110"))
    assert official.status_code == 200 and len(official.json()) == 1
    assert (await client.get(f"/api/v1/commissioners/{cid}/near-qualifying?year=2024",
                             headers=auth("county_official", "330110"))).json() == []
    for stranger in (auth("commissioner", "330110", sub=other), auth("county_official", "330109"), ent):
        r = await client.get(f"/api/v1/commissioners/{cid}/near-qualifying", headers=stranger)
        assert r.status_code == 404, r.text
    assert (await client.get(f"/api/v1/commissioners/{other}/near-qualifying",
                             headers=auth("commissioner", "330110", sub=other))).json() == []

    # the enterprise opts in to SMS for gap advice: next year's advice comes by SMS too (once), not by e-mail
    r = await client.put("/api/v1/notifications/preferences", headers=ent, json={"gap_advice_sms": True})
    assert r.status_code == 200 and r.json()["gap_advice_sms"] is True
    await produce(producer, completed(u, "330110", 2026, [SRDI_NEAR]), times=2)
    await settled(box, sf, sms=1, emails=0)
    sms = box.sms_to(MOBILE)
    assert len(sms) == 1 and "研发费用再增加 ¥600,000" in sms[0]["text"]
    assert box.emails_to(EMAIL) == []
    assert await _count(sf, u, 2026, expected=1)


async def _count(sf: async_sessionmaker[AsyncSession], u: str, year: int, expected: int) -> bool:
    async with sf() as s:
        rows = (await s.execute(select(gap_advices).where(gap_advices.c.uscc == u, gap_advices.c.year == year))).all()
    return len(rows) == expected


async def test_no_advice_when_eligible_elsewhere_held_too_far_or_gaps_unknown(
    clean: Mailbox, sf: async_sessionmaker[AsyncSession]
) -> None:
    u = uscc("330110")
    await apply(sf, registered(u, "330110", "杭州余杭某科技有限公司", MOBILE, None))
    await apply(sf, recognised(u, "330110", "innovative", level="county"))
    await apply(sf, completed(u, "330110", 2025, [
        SRDI_NEAR,
        {**SRDI_NEAR, "ruleset_id": "YH-2022-district-srdi", "level": "county", "eligible": True, "gaps": []},
        {**SRDI_NEAR, "tier": "innovative"},                      # already held
        LITTLE_GIANT_FAR,                                         # ¥5,000,000 > ¥1,000,000
        {**SRDI_NEAR, "tier": "hidden_champion", "gaps": None},  # today's payload: no gaps published
        {**SRDI_COUNTY_FAR, "tier": "single_champion"},           # one gap is not money
    ]))
    async with sf() as s:
        assert (await s.execute(select(gap_advices))).all() == []
