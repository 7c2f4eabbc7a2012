"""Annual indicators: revisions, consistency checks, agency precedence, the reported event."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.harness import auth
from tests.registry.conftest import scalar
from tests.registry.helpers import XS, YH, YUHANG, ent_auth, register

IND = {
    "operating_revenue": "35000000",
    "operating_revenue_prev1": "30000000.5",
    "main_business_revenue": "33000000.00",
    "rd_expense": "1500000",
    "employees": 120,
    "rd_staff": 20,
    "net_profit": "-120000.00",
    "ip_class1": 3,
}


async def test_put_get_and_event(client: httpx.AsyncClient, clean: AsyncEngine) -> None:
    code = (await register(client, 1))["uscc"]
    r = await client.put(
        f"/api/v1/enterprises/{code}/indicators/2025", json={"indicators": IND}, headers=ent_auth(code)
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["revision"] == 1 and body["sources"] == ["self_report"]
    assert body["indicators"]["operating_revenue"] == "35000000.00"
    assert body["indicators"]["operating_revenue_prev1"] == "30000000.50"
    assert body["indicators"]["net_profit"] == "-120000.00"
    assert body["indicators"]["employees"] == 120
    ev = await scalar(clean, "SELECT payload FROM registry.outbox WHERE type = 'zjtx.registry.indicators.reported.v1'")
    assert ev["uscc"] == code and ev["year"] == 2025 and ev["revision"] == 1 and ev["source"] == "self_report"
    assert ev["enterprise"]["is_manufacturing"] is True and ev["enterprise"]["scale"] == "small"
    assert ev["indicators"]["rd_expense"] == "1500000.00"
    assert "tax_paid" in ev["indicators"] and ev["indicators"]["tax_paid"] is None  # full set, every field
    listing = (await client.get(f"/api/v1/enterprises/{code}/indicators", headers=YH)).json()
    assert [y["year"] for y in listing] == [2025]


async def test_inconsistent_or_bad_indicators_rejected(client: httpx.AsyncClient, clean: AsyncEngine) -> None:
    code = (await register(client, 2))["uscc"]
    url = f"/api/v1/enterprises/{code}/indicators/2025"
    cases = [
        ({**IND, "main_business_revenue": "36000000"}, "indicators.main_business_revenue"),
        ({**IND, "rd_staff": 121}, "indicators.rd_staff"),
        ({**IND, "rd_expense": "-1"}, "indicators.rd_expense"),
        ({**IND, "employees": 12.5}, "indicators.employees"),
        ({**IND, "revenue_pct": 3}, "indicators.revenue_pct"),
    ]
    for ind, field in cases:
        r = await client.put(url, json={"indicators": ind}, headers=YH)
        assert r.status_code == 422, (field, r.text)
        assert any(e["field"] == field for e in r.json()["errors"]), r.json()
    r = await client.put(url, json={"indicators": IND, "extra": 1}, headers=YH)
    assert r.status_code == 422
    r = await client.put(url, json={"indicators": IND, "source": "agency:税务"}, headers=YH)
    assert r.status_code == 403
    r = await client.put(url, json={"indicators": IND}, headers=XS)
    assert r.status_code == 404
    r = await client.put(f"/api/v1/enterprises/{code}/indicators/1990", json={"indicators": IND}, headers=YH)
    assert r.status_code == 422
    assert await scalar(clean, "SELECT count(*) FROM registry.indicator_revisions") == 0
    assert await scalar(clean, "SELECT count(*) FROM registry.outbox WHERE type LIKE '%indicators%'") == 0


async def test_agency_precedence_and_history(client: httpx.AsyncClient, clean: AsyncEngine) -> None:
    code = (await register(client, 3))["uscc"]
    url = f"/api/v1/enterprises/{code}/indicators/2025"
    assert (await client.put(url, json={"indicators": IND}, headers=ent_auth(code))).status_code == 200
    tax = auth("agency", YUHANG, sub="税务局")
    r = await client.put(
        url,
        json={"source": "agency:余杭区税务局", "indicators": {"operating_revenue": "34000000", "tax_paid": "900000"}},
        headers=tax,
    )
    assert r.status_code == 200, r.text
    # a later self-report does not override the agency's figures
    later = {**IND, "operating_revenue": "36000000", "employees": 130}
    r = await client.put(url, json={"indicators": later}, headers=ent_auth(code))
    body = r.json()
    assert body["revision"] == 3
    assert body["indicators"]["operating_revenue"] == "34000000.00"
    assert body["indicators"]["tax_paid"] == "900000.00"
    assert body["indicators"]["employees"] == 130
    assert body["sources"] == ["agency:余杭区税务局", "self_report"]
    hist = (await client.get(url, params={"history": "true"}, headers=YH)).json()
    assert [h["revision"] for h in hist["history"]] == [1, 2, 3]
    assert hist["history"][1]["source"] == "agency:余杭区税务局" and hist["history"][1]["actor"] == "税务局"
    assert hist["history"][0]["values"]["operating_revenue"] == "35000000.00"
    last = await scalar(
        clean,
        "SELECT payload FROM registry.outbox WHERE type = 'zjtx.registry.indicators.reported.v1' "
        "ORDER BY seq DESC LIMIT 1",
    )
    assert last["revision"] == 3 and last["indicators"]["operating_revenue"] == "34000000.00"
    assert (await client.get(f"/api/v1/enterprises/{code}/indicators/2019", headers=YH)).status_code == 404
    # agency source must name the agency
    r = await client.put(url, json={"source": "self_report", "indicators": IND}, headers=tax)
    assert r.status_code == 422


async def test_scale_follows_latest_indicators_unless_given(client: httpx.AsyncClient, clean: AsyncEngine) -> None:
    code = (await register(client, 4))["uscc"]  # derived: small (120 staff, 3500万)
    big = {**IND, "employees": 400, "rd_staff": 40, "operating_revenue": "90000000", "main_business_revenue": "8e7"}
    r = await client.put(f"/api/v1/enterprises/{code}/indicators/2025", json={"indicators": big}, headers=YH)
    assert r.status_code == 200, r.text
    ent = await client.get(f"/api/v1/enterprises/{code}", headers=YH)
    assert ent.json()["scale"] == "medium" and ent.json()["version"] == 2 and ent.headers["etag"] == '"v2"'
    ev = await scalar(clean, "SELECT payload FROM registry.outbox WHERE type = 'zjtx.registry.indicators.reported.v1'")
    assert ev["enterprise"]["scale"] == "medium"
    assert await scalar(clean, "SELECT count(*) FROM registry.outbox WHERE type LIKE '%enterprise.updated%'") == 1
    # an older year does not change the scale
    r = await client.put(f"/api/v1/enterprises/{code}/indicators/2023", json={"indicators": IND}, headers=YH)
    assert (await client.get(f"/api/v1/enterprises/{code}", headers=YH)).json()["scale"] == "medium"
    # a scale given by an official is kept
    r = await client.patch(f"/api/v1/enterprises/{code}", json={"scale": "large"}, headers={**YH, "If-Match": '"v2"'})
    assert r.status_code == 200
    await client.put(f"/api/v1/enterprises/{code}/indicators/2025", json={"indicators": IND}, headers=YH)
    assert (await client.get(f"/api/v1/enterprises/{code}", headers=YH)).json()["scale"] == "large"
