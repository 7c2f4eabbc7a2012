"""The pages: sign-in by token form (cookie), the region page's figures (the API's), the enterprise page."""

from __future__ import annotations

import html
import io
import json
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.harness import auth, running_service, token
from tests.monitor import programme as p
from tests.monitor.conftest import apply


@pytest.fixture
async def site(clean: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    await apply(clean, p.events())
    async with running_service("monitor") as (_, client):
        yield client


def _sheets(content: bytes) -> dict[str, list[tuple]]:
    wb = load_workbook(io.BytesIO(content))
    return {ws.title: list(ws.iter_rows(values_only=True)) for ws in wb}


def _page_data(text: str) -> dict:
    found = re.search(r'<script type="application/json" id="page-data">(.*?)</script>', text, re.S)
    assert found
    return json.loads(html.unescape(found.group(1)))


async def test_sign_in_sets_a_cookie_and_opens_the_own_region(site: httpx.AsyncClient) -> None:
    r = await site.get("/monitor/regions/331100")
    assert r.status_code == 303 and r.headers["location"].startswith("/monitor/login")
    form = await site.get("/monitor/login")
    assert form.status_code == 200 and 'name="token"' in form.text
    bad = await site.post("/monitor/login", data={"token": "not-a-jwt"})
    assert bad.status_code == 401 and "令牌无效" in bad.text
    r = await site.post("/monitor/login", data={"token": token("city_official", p.LISHUI)})
    assert r.status_code == 303 and r.headers["location"] == "/monitor/regions/331100"
    cookie = r.headers["set-cookie"]
    assert "zjtx_token=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    page = await site.get("/monitor/regions/331100", params={"year": p.YEAR})
    assert page.status_code == 200 and "丽水市 · 2026 年度" in page.text
    assert "/monitor/static/echarts.min.js" in page.text and "cdn" not in page.text.lower()
    assert (await site.get("/monitor/static/echarts.min.js")).status_code == 200
    # outside the jurisdiction: not found; signing out forgets the token
    assert (await site.get("/monitor/regions/330100")).status_code == 404
    await site.get("/monitor/logout")
    assert (await site.get("/monitor/regions/331100")).status_code == 303


async def test_region_page_embeds_the_apis_figures(site: httpx.AsyncClient) -> None:
    site.cookies.set("zjtx_token", token("province_official", "330000"))
    page = await site.get(f"/monitor/regions/{p.LIANDU}", params={"year": p.YEAR})
    assert page.status_code == 200
    data = _page_data(page.text)
    headers = auth("province_official", "330000")
    for name in ("attainment", "funnel", "money", "recognitions", "forecast"):
        api = (await site.get(f"/api/v1/monitor/{name}", params={"year": p.YEAR, "region": p.LIANDU},
                              headers=headers)).json()
        if name == "forecast":
            for row in api["rows"]:
                row["candidates"] = row["candidates"][:5]
        assert data[name] == api, name
    assert "丽水莲都示例2号有限公司" in page.text  # the forecast list links the nearest enterprise
    # the report link works with the sign-in cookie (the API's wants a bearer token)
    link = re.search(r'id="report-link" href="([^"]+)"', page.text)
    assert link
    report = await site.get(html.unescape(link.group(1)))
    assert report.status_code == 200
    api_report = await site.get("/api/v1/monitor/reports/annual", params={"year": p.YEAR, "region": p.LIANDU},
                                headers=headers)
    assert _sheets(report.content) == _sheets(api_report.content) and "奖补资金" in _sheets(report.content)
    assert '<a href="/monitor/regions/331100?year=2026">丽水市</a>' in page.text  # breadcrumbs up the tree


async def test_enterprise_page(site: httpx.AsyncClient) -> None:
    site.cookies.set("zjtx_token", token("county_official", p.LIANDU))
    page = await site.get(f"/monitor/enterprises/{p.A[1]}")
    assert page.status_code == 200
    assert "丽水莲都示例1号有限公司" in page.text and "600000.00" in page.text and "暂不符合" in page.text
    six = await site.get(f"/monitor/enterprises/{p.A[6]}")
    assert "省级专精特新中小企业" in six.text and "王专员" in six.text and "200000.00" in six.text
    assert (await site.get(f"/monitor/enterprises/{p.C[1]}")).status_code == 404  # 杭州's


async def test_without_a_year_the_latest_with_targets_is_shown(site: httpx.AsyncClient, clean: AsyncEngine) -> None:
    """No year asked: the page and the attainment API show the latest year with targets in the caller's
    jurisdiction up to the current one (a later year's targets are not yet due); without any, the current year.
    The page says which year it shows and offers the others."""
    from datetime import UTC, datetime

    this_year = datetime.now(UTC).year
    await apply(clean, [
        p.event(p.t(p.REG, "target.set"), p.QINGTIAN, p.QINGTIAN, {
            "region_code": p.QINGTIAN, "track": "srdi", "measure": "recognised", "level": "any", "year": year,
            "target": n}) for year, n in ((this_year - 2, 4), (this_year + 1, 9))])
    qingtian = auth("county_official", p.QINGTIAN)
    att = (await site.get("/api/v1/monitor/attainment", headers=qingtian)).json()
    assert att["year"] == this_year - 2
    assert [(r["tier"], r["target"]) for r in att["total"] if r["target"]] == [("srdi", 4)]
    assert att == (await site.get("/api/v1/monitor/attainment", params={"year": this_year - 2},
                                  headers=qingtian)).json()
    # the province holds targets of this year (the programme's): they are shown
    assert (await site.get("/api/v1/monitor/attainment", headers=auth("province_official", "330000"))).json()[
        "year"] == this_year
    # 余杭 has no targets at all: the current year
    assert (await site.get("/api/v1/monitor/attainment", headers=auth("county_official", p.YUHANG))).json()[
        "year"] == this_year

    await site.post("/monitor/login", data={"token": token("county_official", p.QINGTIAN)})
    page = await site.get(f"/monitor/regions/{p.QINGTIAN}")
    assert page.status_code == 200 and f"青田县 · {this_year - 2} 年度" in page.text
    assert 'id="year-note"' in page.text
    years = re.search(r'<span id="year-select">(.*?)</span>', page.text, re.S)
    assert years
    assert f'<strong aria-current="page">{this_year - 2}</strong>' in years.group(1)
    assert f'?year={this_year}"' in years.group(1) and f"{this_year + 1}" not in years.group(1)
    asked = await site.get(f"/monitor/regions/{p.QINGTIAN}", params={"year": this_year})
    assert f"青田县 · {this_year} 年度" in asked.text and 'id="year-note"' not in asked.text
