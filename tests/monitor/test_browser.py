"""The monitor's pages in a real browser (Debian's chromium driven by Playwright): sign in as the province, read
the charts' values from the page and compare them with the API, drill down to 丽水 and to 莲都区, and keep
screenshots under ``test-artifacts/monitor/``."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.harness import auth, token
from tests.monitor import programme as p
from tests.monitor.conftest import apply, serving

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "monitor"

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="没有找到 chromium (/usr/bin/chromium): apt-get install -y chromium (.ci/run does)"
)


@pytest.fixture
async def base(clean: AsyncEngine) -> AsyncIterator[str]:
    await apply(clean, p.events())
    async with serving("monitor") as url:
        yield url


async def _chart(page: Any, chart: str) -> dict[str, Any]:
    """What the ECharts instance on the page draws: its category axis and each series' data."""
    option: dict[str, Any] = await page.evaluate(
        """(id) => { const o = window.monitorCharts[id].getOption();
                     return {x: o.xAxis ? o.xAxis[0].data : null,
                             series: o.series.map(s => ({name: s.name, data: s.data}))}; }""",
        chart,
    )
    return option


def _sum_by_region(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for r in rows:
        name = r["region"]["name"]
        if key == "target":
            if r["target"] is not None:
                out[name] = (out.get(name) or 0) + r["target"]
            else:
                out.setdefault(name, None)
        else:
            out[name] = out.get(name, 0) + r[key]
    return out


async def _check_region(page: Any, api: httpx.AsyncClient, code: str) -> None:
    headers = auth("province_official", "330000")
    params = {"year": p.YEAR, "region": code}
    att = (await api.get("/api/v1/monitor/attainment", params=params, headers=headers)).json()
    drawn = await _chart(page, "chart-attainment")
    rows = att["rows"] if att["children"] else att["total"]
    places = [c["name"] for c in att["children"]] or [att["region"]["name"]]
    assert drawn["x"] == places
    actual, target = _sum_by_region(rows, "actual"), _sum_by_region(rows, "target")
    assert drawn["series"][0]["data"] == [actual[n] for n in places]
    assert drawn["series"][1]["data"] == [target[n] for n in places]

    funnel = (await api.get("/api/v1/monitor/funnel", params=params, headers=headers)).json()["total"]
    steps = {d["name"]: d["value"] for d in (await _chart(page, "chart-funnel"))["series"][0]["data"]}
    assert (steps["培育库在库"], steps["申报"], steps["当年新认定"]) == (
        funnel["pool"], funnel["applied"], funnel["recognised"])

    money = (await api.get("/api/v1/monitor/money", params=params, headers=headers)).json()
    mrows = money["rows"] or [money["total"]]
    drawn = await _chart(page, "chart-money")
    assert drawn["x"] == [r["region"]["name"] for r in mrows]
    paid = next(s for s in drawn["series"] if s["name"] == "已拨付")["data"]
    assert paid == [float(r["paid"]) for r in mrows]
    budget = next(s for s in drawn["series"] if s["name"] == "预算")["data"]
    assert budget == [None if r["budget"] is None else float(r["budget"]) for r in mrows]


async def test_province_drills_down_to_a_lishui_county_in_chromium(base: str) -> None:
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as pw, httpx.AsyncClient(base_url=base, timeout=10) as api:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync"])
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 1800}, locale="zh-CN")
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            await page.goto(f"{base}/monitor/regions/330000?year={p.YEAR}")
            assert "/monitor/login" in page.url  # not signed in yet
            await page.fill("#token", token("province_official", "330000"))
            await page.click("#sign-in")
            await page.wait_for_url(f"{base}/monitor/regions/330000")
            await page.goto(f"{base}/monitor/regions/330000?year={p.YEAR}")
            await page.wait_for_function("window.monitorCharts && window.monitorCharts['chart-attainment']")
            assert await page.text_content("#region-title") == "浙江省 · 2026 年度"
            assert len(await page.query_selector_all("#region-tree a")) == 11  # the 11 cities
            await _check_region(page, api, "330000")
            await page.screenshot(path=str(ARTIFACTS / "1-province.png"), full_page=True)

            await page.click("#region-tree a[data-code='331100']")
            await page.wait_for_url(f"{base}/monitor/regions/331100?year={p.YEAR}")
            await page.wait_for_function("window.monitorCharts && window.monitorCharts['chart-attainment']")
            await _check_region(page, api, "331100")
            await page.screenshot(path=str(ARTIFACTS / "2-lishui.png"), full_page=True)

            await page.click(f"#region-tree a[data-code='{p.LIANDU}']")
            await page.wait_for_url(f"{base}/monitor/regions/{p.LIANDU}?year={p.YEAR}")
            await page.wait_for_function("window.monitorCharts && window.monitorCharts['chart-attainment']")
            assert await page.text_content("#region-title") == "莲都区 · 2026 年度"
            await _check_region(page, api, p.LIANDU)
            forecast = await page.text_content("#table-forecast")
            assert forecast is not None and "丽水莲都示例2号有限公司" in forecast
            await page.screenshot(path=str(ARTIFACTS / "3-liandu.png"), full_page=True)

            await page.click("#table-forecast a >> nth=0")
            await page.wait_for_url(f"{base}/monitor/enterprises/{p.A[2]}")
            assert "丽水莲都示例2号有限公司" in (await page.text_content("#enterprise-title") or "")
            await page.screenshot(path=str(ARTIFACTS / "4-enterprise.png"), full_page=True)
            # everything the pages loaded came from the service itself: no CDN
            assert requests and all(u.startswith(base) for u in requests)
        finally:
            await browser.close()
