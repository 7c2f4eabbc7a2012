"""Every route of monitor's OpenAPI, walked with each role of a foreign identity (issue 16 "a generated test walks
every route of every service's OpenAPI"), as ``tests/registry/test_route_matrix.py`` does for registry.

The programme of ``tests/monitor/programme.py`` holds real data in 丽水 (莲都, 青田) and 杭州 (余杭). Each identity on
the 杭州 side (余杭 county and 杭州 city officials, enterprise C1, C1's commissioner, a 杭州 agency) calls every route
with a 莲都 enterprise in the path and 莲都 in the query, and again with no filter: a route naming 丽水's data answers
404 or 403, a report or the feed shows none of it, and no answer is a 5xx. A new route is walked without editing
this file; one the walk cannot fill fails until it is given values here. The owner (丽水's city official) reads
every route with the same values (200), so the 404s are about ownership."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.harness import auth, fill_path, openapi_routes, running_service
from tests.monitor import programme as p
from tests.monitor.conftest import apply

PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/api/v1/contracts"),
    ("GET", "/api/v1/contracts/{event_type}"),
}
ADMIN_ONLY = {("GET", "/api/v1/admin/outbox/parked")}
STREAM = ("GET", "/api/v1/feed/stream")  # server-sent events: only asked for 莲都 (a 200 would stream for ever)

IDENTITIES = {
    "county_official 余杭": auth("county_official", p.YUHANG, sub="yh-county"),
    "city_official 杭州": auth("city_official", "330100", sub="hz-city"),
    "enterprise C1": auth("enterprise", p.YUHANG, uscc=p.C[1]),
    "commissioner of C1": auth("commissioner", p.YUHANG, sub="cm-yh"),
    "agency 杭州": auth("agency", "330100", sub="杭州市税务局"),
}
OWNER = auth("city_official", p.LISHUI, sub="ls-city")
FOREIGN = [p.LIANDU, p.QINGTIAN, p.LISHUI, "丽水", "青田", *p.A.values(), *p.B.values()]


@pytest.fixture
async def api(clean: AsyncEngine) -> Any:
    await apply(clean, [*p.events(), p.assigned(p.C[1], p.YUHANG, "cm-yh", "余杭专员")])
    async with running_service("monitor") as (_, client):
        yield client


def text_of(r: httpx.Response) -> str:
    """The body as text; a workbook (the annual report) by its cells."""
    if r.headers.get("content-type", "").startswith("application/vnd.openxmlformats"):
        wb = load_workbook(io.BytesIO(r.content), read_only=True)
        return "\n".join(str(c) for ws in wb.worksheets for row in ws.iter_rows(values_only=True) for c in row)
    return r.text



def fill(path: str) -> str:
    return fill_path(path, {"uscc": p.A[1]})


def query(op: dict[str, Any], region: bool = True) -> dict[str, Any]:
    names = {x["name"] for x in op.get("parameters", []) if x["in"] == "query"}
    wanted = {"region": p.LIANDU} if region else {}
    wanted |= {"year": p.YEAR, "wait": 0}
    return {k: v for k, v in wanted.items() if k in names}


@pytest.mark.parametrize("who", list(IDENTITIES))
async def test_foreign_identity_gets_nothing_of_another_city(api: httpx.AsyncClient, who: str) -> None:
    headers = IDENTITIES[who]
    spec = (await api.get("/openapi.json")).json()
    leaks: list[str] = []
    walked = 0
    for method, path, op in openapi_routes(spec):
        if (method, path) in PUBLIC:
            continue
        assert method == "GET", f"{method} {path}: monitor is read-only; walk its writes here"
        url = fill(path)
        if (method, path) == STREAM:
            try:
                r = await asyncio.wait_for(api.get(url, params=query(op), headers=headers), timeout=5)
            except TimeoutError:
                leaks.append(f"{method} {path} streamed 莲都")
                continue
            answers = [r]
        else:
            answers = [await api.get(url, params=query(op), headers=headers)]
            if "{" not in path:
                answers.append(await api.get(url, params=query(op, region=False), headers=headers))
        walked += 1
        for r in answers:
            assert r.status_code < 500, (who, method, path, r.status_code, r.text)
            if (method, path) in ADMIN_ONLY:
                ok = r.status_code == 403
            elif "{" in path or (method, path) == STREAM:
                ok = r.status_code in (403, 404)
            else:  # a report or the feed: refused, or nothing of 丽水 in it
                ok = r.status_code in (403, 404) or (
                    r.status_code == 200 and not any(x in text_of(r) for x in FOREIGN))
            if not ok:
                leaks.append(f"{method} {path} {dict(r.request.url.params)} -> {r.status_code} {r.text[:160]}")
    assert leaks == [], f"{who}:\n" + "\n".join(leaks)
    assert walked >= 12


async def test_the_owner_reads_every_route_with_the_same_values(api: httpx.AsyncClient) -> None:
    """Control: 丽水's city official gets 200 with 莲都's data where the foreign identities got nothing."""
    spec = (await api.get("/openapi.json")).json()
    for method, path, op in openapi_routes(spec):
        if (method, path) in PUBLIC | ADMIN_ONLY or (method, path) == STREAM:
            continue
        r = await api.get(fill(path), params=query(op), headers=OWNER)
        assert r.status_code == 200, (path, r.status_code, r.text)
        if path == "/api/v1/monitor/reports/annual":
            assert "莲都" in text_of(r) or p.LIANDU in text_of(r)  # the workbook check reads its cells
