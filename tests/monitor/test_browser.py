"""The monitor's pages in a real browser (Debian's chromium driven by Playwright): sign in as the province, read
the charts' values from the page and compare them with the API, drill down to 丽水 and to 莲都区, and keep
screenshots under ``test-artifacts/monitor/``. Once on a small programme served in-process, and once as issue 14's
"Done when" on the dev stack ``zjtx run`` starts with its default demo: the figures equal the API's and the annual
report file's, and the enterprises the forecast lists for 余杭 and 专精特新 got their gap advice once."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.infra import free_port, port_open
from tests.harness import auth, token
from tests.monitor import programme as p
from tests.monitor.conftest import apply, serving

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "monitor"

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


async def _check_region(page: Any, api: httpx.AsyncClient, code: str, headers: dict[str, str] | None = None,
                        year: int = p.YEAR) -> dict[str, Any]:
    """The page's charts draw the API's figures; returns the API's attainment."""
    headers = headers or auth("province_official", "330000")
    params = {"year": year, "region": code}
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
    return att  # type: ignore[no-any-return]


async def test_province_drills_down_to_a_lishui_county_in_chromium(base: str) -> None:
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as pw, httpx.AsyncClient(base_url=base, timeout=10) as api:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
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


# ------------------------------------------------------------------------------- the "Done when" on the dev stack

def _zjtx_token(env: dict[str, str], *args: str) -> str:
    """A token the dev stack accepts (its own default secret, as ``make run`` prints them)."""
    out = subprocess.run([sys.executable, "-m", "shared.cli", "token", *args], env=env, cwd=REPO,
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


@contextlib.contextmanager
def _dev_stack(tmp_path: Path) -> Iterator[tuple[dict[str, str], int, str]]:
    """``zjtx run`` (the default demo) on a temporary home and a free port base; yields (env, base, its output)."""
    base = 20000 + (free_port() % 20000)
    while any(port_open(base + i) for i in (1, 2, 3, 4, 5, 25, 90, 91)):
        base = 20000 + (free_port() % 20000)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZJTX_")} | {
        "ZJTX_HOME": str(tmp_path / "home"), "ZJTX_DEV_PORT_BASE": str(base),
        "ZJTX_DEV_KAFKA_PORT": str(free_port()), "ZJTX_LOG_LEVEL": "WARNING"}
    log = tmp_path / "run.log"
    with log.open("w") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "shared.cli", "run"], cwd=REPO, env=env, stdout=sink,
                                stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 420
        while "is up in" not in log.read_text() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        output = log.read_text()
        assert "is up in" in output, output[-3000:]
        yield env, base, output
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def _sheet(content: bytes, name: str) -> list[list[Any]]:
    wb = load_workbook(io.BytesIO(content))
    return [list(r) for r in wb[name].iter_rows(min_row=3, values_only=True)]


async def _report_equals_api(api: httpx.AsyncClient, headers: dict[str, str], code: str, year: int,
                             att: dict[str, Any]) -> list[list[Any]]:
    r = await api.get("/api/v1/monitor/reports/annual", params={"region": code, "year": year}, headers=headers)
    assert r.status_code == 200, r.text
    rows = _sheet(r.content, "目标达成")
    assert rows == [[x["region"]["code"], x["region"]["name"], x["tier_name"], x["target"], x["actual"], x["ratio"]]
                    for x in att["total"] + att["rows"]]
    return rows


@pytest.mark.e2e
async def test_done_when_on_the_dev_stack(tmp_path: Path) -> None:
    """Issue 14's "Done when" walked on ``zjtx run``: the province official opens the monitor page, sees attainment
    for the 11 cities, drills to 丽水 and to 莲都区 — the numbers equal the API's and the report file's; the
    forecast for 余杭 and srdi lists the pool enterprises nearest to qualifying with their yuan gaps, and each has
    received the gap advice once. The figures seen are kept in ``test-artifacts/monitor/done-when.json``."""
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with _dev_stack(tmp_path) as (env, stack_base, output):
        base, nt = f"http://127.0.0.1:{stack_base + 5}", f"http://127.0.0.1:{stack_base + 4}"
        province = _zjtx_token(env, "--role", "province_official", "--region", "330000", "--sub", "prov-330000-a")
        headers = {"Authorization": f"Bearer {province}"}
        this_year = datetime.now(UTC).year
        seen: dict[str, Any] = {"up": re.findall(r"\[zjtx\] (zjtx is up in [\d.]+s|demo data for .*)", output)}
        async with async_playwright() as pw, httpx.AsyncClient(base_url=base, timeout=30) as api:
            # without a year: the latest with targets in the province (the demo publishes none for this year)
            year = (await api.get("/api/v1/monitor/attainment", headers=headers)).json()["year"]
            assert year < this_year
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page(viewport={"width": 1400, "height": 2000}, locale="zh-CN")
                await page.goto(f"{base}/monitor")
                await page.fill("#token", province)
                await page.click("#sign-in")
                await page.wait_for_url(f"{base}/monitor/regions/330000")
                await page.wait_for_function("window.monitorCharts && window.monitorCharts['chart-attainment']")
                assert await page.text_content("#region-title") == f"浙江省 · {year} 年度"
                assert len(await page.query_selector_all("#region-tree a")) == 11  # the 11 cities
                for code, shot in (("330000", "5-stack-province"), ("331100", "6-stack-lishui"),
                                   ("331102", "7-stack-liandu")):
                    if code != "330000":
                        await page.click(f"#region-tree a[data-code='{code}']")
                        await page.wait_for_url(f"{base}/monitor/regions/{code}?year={year}")
                        await page.wait_for_function(
                            "window.monitorCharts && window.monitorCharts['chart-attainment']")
                    att = await _check_region(page, api, code, headers, year)
                    if code == "330000":  # the year shown has targets: real ratios (the demo's 2025 targets are
                        # the province's and 杭州's, domain.md §0b, and a modelled split for the ten other cities)
                        assert len({r["region"]["code"] for r in att["rows"]}) == 11
                        srdi = {r["region"]["code"]: r["ratio"] for r in att["rows"]
                                if r["tier"] == "srdi" and r["target"]}
                        assert len(srdi) == 11 and all(v is not None for v in srdi.values()), srdi
                        assert all(r["ratio"] is not None for r in att["total"] if r["target"]), att["total"]
                        assert {r["tier"] for r in att["total"] if r["target"]} >= {"innovative", "srdi"}
                        ratios = {f'{r["region"]["name"]} {r["tier_name"]}': r["ratio"]
                                  for r in att["total"] + att["rows"] if r["target"]}
                        assert any(k.startswith("杭州市") for k in ratios) and all(
                            v is not None for v in ratios.values()), ratios
                        seen["ratios"] = ratios
                    rows = await _report_equals_api(api, headers, code, year, att)
                    seen[code] = [r for r in rows if r[3] is not None or r[4]]
                    await page.screenshot(path=str(ARTIFACTS / f"{shot}.png"), full_page=True)
                assert {r["region"]["code"] for r in att["total"]} == {"331102"}

                # 余杭, 专精特新: the pool enterprises nearest to qualifying, with their yuan gaps
                f = (await api.get("/api/v1/monitor/forecast", params={"region": "330110", "tier": "srdi",
                                                                      "year": this_year}, headers=headers)).json()
                (row,) = f["rows"]
                near = row["candidates"][:5]  # what the region page lists per county and tier
                assert len(near) == 5 and all(c["yuan_gap"] is not None for c in near), row
                await page.goto(f"{base}/monitor/regions/330110?year={this_year}")
                table = await page.text_content("#table-forecast") or ""
                for c in near:
                    assert (c["name"] or c["uscc"]) in table and f"¥{c['yuan_gap']}" in table, (c, table)
                await page.screenshot(path=str(ARTIFACTS / "8-stack-yuhang-forecast.png"), full_page=True)
            finally:
                await browser.close()
            # each got the gap advice once: in its own inbox (notification)
            advised = {}
            async with httpx.AsyncClient(base_url=nt, timeout=30) as notification:
                for c in near:
                    ent = _zjtx_token(env, "--role", "enterprise", "--region", "330110", "--uscc", c["uscc"])
                    inbox = (await notification.get("/api/v1/notifications", params={"limit": 200},
                                                    headers={"Authorization": f"Bearer {ent}"})).json()["items"]
                    advice = [i for i in inbox if i["template_code"] == "gap_advice"]
                    assert len(advice) == 1, (c, [i["template_code"] for i in inbox])
                    assert "¥" in advice[0]["body"] and advice[0]["deliveries"] == []  # inbox only: no SMS on start
                    advised[c["uscc"]] = advice[0]["body"]
            notices = (await api.get("/api/v1/monitor/notices", params={"year": this_year}, headers=headers)).json()
        seen["yuhang_srdi"] = {k: row[k] for k in ("target", "actual", "lacking")} | {
            "nearest": [{**c, "advice": advised[c["uscc"]]} for c in near]}
        seen["notices"] = notices["total"]
        (ARTIFACTS / "done-when.json").write_text(json.dumps(seen, ensure_ascii=False, indent=1, default=str))
