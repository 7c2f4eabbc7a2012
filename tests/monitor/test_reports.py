"""The reporting read models and the monitor API, fed by a programme's events through the handler path."""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.harness import auth, running_service
from tests.monitor import programme as p
from tests.monitor.conftest import apply


@pytest.fixture
async def api(clean: AsyncEngine) -> httpx.AsyncClient:
    await apply(clean, p.events())
    async with running_service("monitor") as (_, client):
        yield client


CITY = auth("city_official", p.LISHUI)
PROVINCE = auth("province_official", "330000")


def _row(rows: list[dict], code: str, tier: str) -> dict:
    return next(r for r in rows if r["region"]["code"] == code and r["tier"] == tier)


async def test_attainment_drills_down_with_ratios(api: httpx.AsyncClient) -> None:
    r = await api.get("/api/v1/monitor/attainment", params={"year": p.YEAR}, headers=CITY)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["region"] == {"code": "331100", "name": "丽水市", "level": "city"}
    assert [b["code"] for b in body["breadcrumbs"]] == ["330000"]
    assert "331102" in [c["code"] for c in body["children"]]
    total = _row(body["total"], "331100", "srdi")
    assert (total["target"], total["actual"], total["ratio"]) == (10, 2, 0.2)  # A4, A6 current; B2 expired
    liandu = _row(body["rows"], "331102", "srdi")
    assert (liandu["target"], liandu["actual"], liandu["ratio"]) == (5, 2, 0.4)
    qingtian = _row(body["rows"], "331121", "srdi")
    assert (qingtian["target"], qingtian["actual"], qingtian["ratio"]) == (None, 0, None)
    # the province rolls 丽水 and 杭州 up; a county has no children
    prov = (await api.get("/api/v1/monitor/attainment", params={"year": p.YEAR}, headers=PROVINCE)).json()
    prov_total = _row(prov["total"], "330000", "srdi")
    assert (prov_total["actual"], prov_total["target"]) == (3, 100)
    assert _row(prov["rows"], "331100", "srdi")["actual"] == 2
    assert _row(prov["rows"], "330100", "srdi")["actual"] == 1
    pool = (await api.get("/api/v1/monitor/attainment", params={"year": p.YEAR, "measure": "pool"},
                          headers=CITY)).json()
    liandu_pool = _row(pool["rows"], "331102", "srdi")
    assert (pool["measure"], liandu_pool["target"], liandu_pool["actual"], liandu_pool["ratio"]) == (
        "pool", 8, 5, 0.625)
    county = (await api.get("/api/v1/monitor/attainment", params={"year": p.YEAR, "region": "331102"},
                            headers=PROVINCE)).json()
    assert county["children"] == [] and _row(county["total"], "331102", "srdi")["actual"] == 2


async def test_funnel_money_recognitions(api: httpx.AsyncClient) -> None:
    f = (await api.get("/api/v1/monitor/funnel", params={"year": p.YEAR}, headers=CITY)).json()
    assert f["total"]["pool"] == 5 and f["total"]["applied"] == 3 and f["total"]["recognised"] == 2
    assert {k: v for k, v in f["total"]["stages"].items() if v} == {"county": 1, "rejected": 1, "recognised": 1}
    srdi = (await api.get("/api/v1/monitor/funnel", params={"year": p.YEAR, "tier": "srdi"}, headers=CITY)).json()
    assert srdi["total"]["recognised"] == 1

    m = (await api.get("/api/v1/monitor/money", params={"year": p.YEAR}, headers=CITY)).json()
    assert {k: m["total"][k] for k in ("entitlements", "created", "approved", "paid", "recovered", "budget")} == {
        "entitlements": 2, "created": "300000.00", "approved": "300000.00", "paid": "300000.00",
        "recovered": "100000.00", "budget": "1500000.00"}
    assert m["total"]["spend_ratio"] == 0.1333
    liandu = next(r for r in m["rows"] if r["region"]["code"] == p.LIANDU)
    assert (liandu["paid"], liandu["budget"], liandu["spend_ratio"]) == ("200000.00", "500000.00", 0.4)
    prov = (await api.get("/api/v1/monitor/money", params={"year": p.YEAR}, headers=PROVINCE)).json()
    assert prov["total"]["paid"] == "800000.00" and prov["total"]["created"] == "1100000.00"

    rec = (await api.get("/api/v1/monitor/recognitions", params={"year": p.YEAR}, headers=CITY)).json()
    rows = {r["tier"]: {k: r[k] for k in ("current", "new", "expired", "revoked")} for r in rec["rows"]}
    assert rows == {"innovative": {"current": 0, "new": 1, "expired": 0, "revoked": 1},
                    "srdi": {"current": 2, "new": 1, "expired": 1, "revoked": 0}}

    yoy = (await api.get("/api/v1/monitor/yoy", params={"year": p.YEAR, "years": 2}, headers=CITY)).json()
    assert [(r["year"], r["pool"], r["recognised"]) for r in yoy["rows"]] == [(2025, 1, 1), (2026, 5, 2)]

    loads = (await api.get("/api/v1/monitor/commissioners", headers=CITY)).json()
    assert loads == [{"commissioner_id": "k1", "name": "王专员", "enterprises": 2}]


async def test_forecast_lists_nearest_pool_enterprises(api: httpx.AsyncClient) -> None:
    f = (await api.get("/api/v1/monitor/forecast", params={"year": p.YEAR, "tier": "srdi"}, headers=CITY)).json()
    row = next(r for r in f["rows"] if r["region"]["code"] == p.LIANDU)
    assert (row["target"], row["actual"], row["lacking"]) == (5, 2, 3)
    # fewest unmet conditions, then the smallest yuan gap; the eligible A4 is not a candidate
    assert [c["uscc"] for c in row["candidates"]] == [p.A[2], p.A[1], p.A[3], p.A[5]]
    assert row["candidates"][0]["yuan_gap"] == "200000.00" and row["candidates"][0]["unmet"] == 1


async def test_jurisdiction_roles_and_bad_input(api: httpx.AsyncClient) -> None:
    hz = auth("county_official", p.YUHANG)
    r = await api.get("/api/v1/monitor/attainment", params={"year": p.YEAR, "region": p.LIANDU}, headers=hz)
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    r = await api.get(f"/api/v1/monitor/enterprises/{p.A[6]}", headers=hz)
    assert r.status_code == 404
    r = await api.get("/api/v1/monitor/attainment", params={"year": p.YEAR},
                      headers=auth("enterprise", p.LIANDU, uscc=p.A[6]))
    assert r.status_code == 403
    r = await api.get("/api/v1/monitor/funnel", params={"year": p.YEAR, "tier": "gold"}, headers=CITY)
    assert r.status_code == 422 and "未知梯度" in r.text
    r = await api.get("/api/v1/monitor/money", params={"year": 1800}, headers=CITY)
    assert r.status_code == 422
    assert (await api.get("/api/v1/monitor/money", params={"year": p.YEAR})).status_code == 401


async def test_enterprise_view(api: httpx.AsyncClient) -> None:
    e = (await api.get(f"/api/v1/monitor/enterprises/{p.A[6]}", headers=CITY)).json()
    assert e["name"] == "丽水莲都示例6号有限公司" and e["region"]["name"] == "莲都区"
    assert [t["tier"] for t in e["titles"]] == ["srdi"]
    assert e["entitlements"][0]["paid_amount"] == "200000.00"
    assert e["commissioner"]["commissioner_name"] == "王专员"
    assert {ev["type"] for ev in e["events"]} >= {"zjtx.evaluation.tier.recognised.v1",
                                                   "zjtx.notification.commissioner.assigned.v1"}
    gaps = (await api.get(f"/api/v1/monitor/enterprises/{p.A[1]}", headers=CITY)).json()["evaluations"]
    assert gaps == [{**gaps[0], "tier": "srdi", "eligible": False, "unmet": 1, "yuan_gap": "600000.00"}]


async def test_annual_report_equals_the_api(api: httpx.AsyncClient) -> None:
    r = await api.get("/api/v1/monitor/reports/annual", params={"year": p.YEAR}, headers=CITY)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
    wb = load_workbook(io.BytesIO(r.content))
    assert wb.sheetnames == ["目标达成", "认定情况", "培育漏斗", "奖补资金", "通知发送", "通知类别"]

    def table(name: str) -> list[list]:
        rows = list(wb[name].iter_rows(values_only=True))
        assert "丽水市2026年度" in rows[0][0]
        return [list(x) for x in rows[1:]]

    att = (await api.get("/api/v1/monitor/attainment", params={"year": p.YEAR}, headers=CITY)).json()
    sheet = table("目标达成")
    assert sheet[0] == ["区划代码", "区划名称", "梯度", "目标数", "有效认定数", "达成率"]
    assert sheet[1:] == [
        [x["region"]["code"], x["region"]["name"], x["tier_name"], x["target"], x["actual"], x["ratio"]]
        for x in att["total"] + att["rows"]
    ]
    money = (await api.get("/api/v1/monitor/money", params={"year": p.YEAR}, headers=CITY)).json()
    funds = table("奖补资金")
    assert funds[1][:8] == ["331100", "丽水市", 2, 300000, 300000, 300000, 100000, 1500000]
    assert [Decimal(str(v)).quantize(Decimal("0.01")) for v in funds[1][3:8]] == [
        Decimal(money["total"][k]) for k in ("created", "approved", "paid", "recovered", "budget")]
    funnel = (await api.get("/api/v1/monitor/funnel", params={"year": p.YEAR}, headers=CITY)).json()
    assert table("培育漏斗")[1][2:4] == [funnel["total"]["pool"], funnel["total"]["applied"]]
    rec = table("认定情况")
    assert rec[0] == ["梯度", "有效", "当年新认定", "已到期", "已撤销"]
    assert rec[1:] == [["创新型中小企业", 0, 1, 0, 1], ["专精特新中小企业", 2, 1, 1, 0]]


def test_cells_are_not_formulas() -> None:
    from shared.spreadsheets import safe_cell

    assert safe_cell("=HYPERLINK(\"http://x\")") == "'=HYPERLINK(\"http://x\")"
    assert safe_cell("@SUM(A1)") == "'@SUM(A1)" and safe_cell("+1") == "'+1" and safe_cell("-1") == "'-1"
    assert safe_cell("丽水市") == "丽水市" and safe_cell(-1) == -1
    assert safe_cell("\n=1+1") == "'\n=1+1"


async def test_a_batch_of_many_evaluation_results_is_one_upsert_per_chunk(clean: AsyncEngine) -> None:
    """A re-evaluation publishes evaluations by the hundred thousand, several rule sets each: a consumer batch
    (2,000 events) of 6 results is 12,000 rows, beyond one statement's 32,767 parameters."""
    from services.monitor.app.projections import record
    from shared.db import make_session_factory
    from shared.tiers import TIERS

    events = [
        p.event("zjtx.evaluation.evaluation.completed.v1", p.uscc(p.LIANDU, 1000 + i), p.LIANDU, {
            "uscc": p.uscc(p.LIANDU, 1000 + i), "region_code": p.LIANDU, "year": p.YEAR, "as_of": "2026-03-01",
            "results": [{"ruleset_id": f"rs-{t}", "tier": t, "eligible": False, "score": "50.00"} for t in TIERS]})
        for i in range(2000)
    ]
    factory = make_session_factory(clean)
    async with factory() as session, session.begin():
        await record(session, events)
    async with clean.connect() as conn:
        from sqlalchemy import text

        n = (await conn.execute(text("SELECT count(*) FROM monitor.evaluations"))).scalar()
    assert n == 2000 * len(TIERS)


async def test_pool_moves_apply_in_order(clean: AsyncEngine) -> None:
    from sqlalchemy import text

    entered = p.pool(p.A[1], p.LIANDU)
    exited = p.event("zjtx.registry.pool.exited.v1", p.A[1], p.LIANDU, {**entered.data, "reason": "recognised"})
    again = p.pool(p.A[1], p.LIANDU)
    other = p.pool(p.A[2], p.LIANDU)
    await apply(clean, [entered, other, exited])  # one batch: the exit after the entry wins
    await apply(clean, [again])
    await apply(clean, [p.event("zjtx.registry.pool.exited.v1", p.A[2], p.LIANDU, dict(other.data))])
    async with clean.connect() as conn:
        rows = dict((await conn.execute(text("SELECT uscc, active FROM monitor.pool_members"))).all())
    assert rows == {p.A[1]: True, p.A[2]: False}


async def test_forecast_takes_each_tier_nearest_result_and_the_pool_of_earlier_years(clean: AsyncEngine) -> None:
    """Several rule sets judge a tier (the county's, the province's): the tier's result is an eligible one, else the
    nearest — as the gap advice reads it: money alone would make it eligible (a yuan gap), then fewest unmet; a
    yuan gap only when every unmet condition is a money gap; members entered in an earlier year are still in this
    year's pool."""
    near, held, score_only = p.uscc(p.LIANDU, 801), p.uscc(p.LIANDU, 802), p.uscc(p.LIANDU, 803)

    def results(u: str, county: dict, province: dict) -> Any:
        return p.event("zjtx.evaluation.evaluation.completed.v1", u, p.LIANDU, {
            "uscc": u, "region_code": p.LIANDU, "year": 2025, "as_of": "2026-03-01", "results": [
                {"ruleset_id": "LD-county-srdi", "tier": "srdi", **county},
                {"ruleset_id": "ZJ-province-srdi", "tier": "srdi", **province}]})

    await apply(clean, [
        p.registered(near, p.LIANDU, "丽水差一点科技有限公司"), p.registered(held, p.LIANDU, "丽水已达标科技有限公司"),
        p.registered(score_only, p.LIANDU, "丽水差几分科技有限公司"),
        p.pool(near, p.LIANDU, year=2025), p.pool(held, p.LIANDU, year=2025), p.pool(score_only, p.LIANDU, year=2025),
        results(near, {"eligible": False, "unmet": 1, "gaps": [{"yuan_needed": "300000.00"}]},
                {"eligible": False, "unmet": 2, "gaps": [{"yuan_needed": "900000.00"}, {"yuan_needed": None}]}),
        results(held, {"eligible": True, "score": "80.00"}, {"eligible": False, "unmet": 1}),
        # one condition short, not one money meets (a score): after the one money would make eligible
        results(score_only, {"eligible": False, "unmet": 1, "score": "79.00"}, {"eligible": False, "unmet": 2}),
    ])
    async with running_service("monitor") as (_, client):
        f = (await client.get("/api/v1/monitor/forecast", params={"year": p.YEAR, "tier": "srdi"},
                              headers=CITY)).json()
    row = next(r for r in f["rows"] if r["region"]["code"] == p.LIANDU)
    assert [(c["uscc"], c["unmet"], c["yuan_gap"]) for c in row["candidates"]] == [
        (near, 1, "300000.00"), (score_only, 1, None)]
