"""Every route of registry's OpenAPI, walked with each role of a foreign identity (issue 16 "claims validated").

Two counties hold real data: 余杭 (杭州) enterprise A and 莲都 (丽水) enterprise B with B's indicators, pool
membership, target and import job. Each identity on the 杭州 side (county and city officials, enterprise A, A's
commissioner, a 杭州 agency) calls every route with B's objects in the path and 莲都 in the query: a route naming
B's data answers 404 or 403, a list shows none of it, a write changes nothing (no audit row, B unchanged), and no
answer is a 5xx. The walk is generated from ``/openapi.json``: a new route is walked without editing this file,
and one the walk cannot fill fails the test until it is given values here. The owner (莲都's official) gets 200
from every read with the same values, so the 404s are about ownership, not malformed requests."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy.ext.asyncio import AsyncEngine

from services.registry.demo import to_csv
from services.registry.events.handlers import on_commissioner_assigned
from shared.db import make_session_factory
from tests.harness import auth, fill_path, openapi_routes
from tests.registry.conftest import scalar
from tests.registry.helpers import LD, LIANDU, LS_CITY, YUHANG, ent_auth, enterprise, register
from tests.registry.test_commissioner_scope import assigned
from tests.registry.test_indicators import IND

# reference data and service endpoints: nobody's data
PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/api/v1/regions"),
    ("GET", "/api/v1/regions/{code}"),
    ("GET", "/api/v1/imports/templates/{kind}"),
    ("GET", "/api/v1/contracts"),
    ("GET", "/api/v1/contracts/{event_type}"),
}
ADMIN_ONLY = {("GET", "/api/v1/admin/outbox/parked")}
# a new job of the caller's own; its rows are checked against the uploader's jurisdiction row by row
# (tests/registry/test_imports.py), so it names nobody else's data in the request itself
OWN_CREATION = {("POST", "/api/v1/imports")}

IDENTITIES = {
    "county_official 余杭": auth("county_official", YUHANG),
    "city_official 杭州": auth("city_official", "330100"),
    "enterprise A": "enterprise",
    "commissioner of A": auth("commissioner", "330100", sub="cm-yh"),
    "agency 杭州": auth("agency", "330100", sub="杭州市税务局"),
}


async def world(client: httpx.AsyncClient, engine: AsyncEngine) -> dict[str, Any]:
    a = await register(client, 1, YUHANG)
    b = await register(client, 2, LIANDU)
    r = await client.put(f"/api/v1/enterprises/{b['uscc']}/indicators/2025", json={"indicators": IND}, headers=LD)
    assert r.status_code == 200, r.text
    r = await client.post(f"/api/v1/pools/county/{LIANDU}/members", headers=LD,
                          json={"uscc": b["uscc"], "track": "srdi", "year": 2025, "basis": "nomination"})
    assert r.status_code in (200, 201), r.text
    r = await client.put("/api/v1/targets", headers=LS_CITY, json={
        "region_code": LIANDU, "track": "srdi", "measure": "pool", "level": "county", "year": 2025, "target": 7})
    assert r.status_code in (200, 201), r.text
    csv = to_csv([["统一社会信用代码", "年度", "营业收入(元)"], [b["uscc"], 2025, "30000000.00"]])
    r = await client.post("/api/v1/imports", params={"kind": "indicators"}, headers=LD,
                          files={"file": ("莲都指标.csv", csv, "text/csv")})
    assert r.status_code == 202, r.text
    job = r.json()["id"]
    async with make_session_factory(engine)() as s, s.begin():
        await on_commissioner_assigned(s, assigned(a["uscc"], "cm-yh"))
    r = await client.get(f"/api/v1/enterprises/{b['uscc']}", headers=LD)
    return {"a": a, "b": b, "job": job, "etag": r.headers.get("etag", "")}


def path_values(w: dict[str, Any]) -> dict[str, str]:
    return {"uscc": w["b"]["uscc"], "year": "2025", "level": "county", "region": LIANDU, "job_id": w["job"]}


def bodies(w: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """A valid body per write route (so the call reaches the authorisation, not the validation)."""
    return {
        ("POST", "/api/v1/enterprises"): enterprise(900, LIANDU),
        ("PATCH", "/api/v1/enterprises/{uscc}"): {"name": "莲都改名测试有限公司"},
        ("POST", "/api/v1/enterprises/{uscc}/deregister"): {"reason": "越权注销测试"},
        ("PUT", "/api/v1/enterprises/{uscc}/indicators/{year}"): {"indicators": IND},
        ("POST", "/api/v1/pools/{level}/{region}/members"): {
            "uscc": w["a"]["uscc"], "track": "srdi", "year": 2025, "basis": "nomination"},
        ("POST", "/api/v1/pools/{level}/{region}/members/{uscc}/exit"): {"track": "srdi", "reason": "越权出库测试"},
        ("PUT", "/api/v1/targets"): {"region_code": LIANDU, "track": "srdi", "measure": "pool", "level": "county",
                                     "year": 2025, "target": 99},
    }




def query(op: dict[str, Any]) -> dict[str, Any]:
    names = {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
    return {k: v for k, v in {"region": LIANDU, "year": 2025}.items() if k in names}


def required_query(op: dict[str, Any]) -> dict[str, Any]:
    names = {p["name"] for p in op.get("parameters", []) if p["in"] == "query" and p.get("required")}
    return {k: v for k, v in query(op).items() if k in names}


def text_of(r: httpx.Response) -> str:
    if r.headers.get("content-type", "").startswith("application/vnd.openxmlformats"):
        wb = load_workbook(io.BytesIO(r.content), read_only=True)
        return "\n".join(str(c) for ws in wb.worksheets for row in ws.iter_rows(values_only=True) for c in row)
    return r.text


async def state(engine: AsyncEngine, w: dict[str, Any]) -> tuple[Any, ...]:
    b = w["b"]["uscc"]
    return (
        await scalar(engine, "SELECT count(*) FROM registry.audit_log"),
        await scalar(engine, "SELECT name || status || version FROM registry.enterprises WHERE uscc = :u", u=b),
        await scalar(engine, "SELECT count(*) FROM registry.indicator_revisions WHERE uscc = :u", u=b),
        await scalar(engine, "SELECT count(*) FROM registry.pool_memberships WHERE exited_on IS NULL"),
        await scalar(engine, "SELECT string_agg(region_code || ':' || target, ',') FROM registry.targets"),
        await scalar(engine, "SELECT count(*) FROM registry.enterprises"),
    )


@pytest.mark.parametrize("who", list(IDENTITIES))
async def test_foreign_identity_gets_nothing_of_another_county(
    client: httpx.AsyncClient, clean: AsyncEngine, who: str
) -> None:
    w = await world(client, clean)
    headers = ent_auth(w["a"]["uscc"]) if IDENTITIES[who] == "enterprise" else IDENTITIES[who]
    spec = (await client.get("/openapi.json")).json()
    values, writes = path_values(w), bodies(w)
    before = await state(clean, w)
    leaks: list[str] = []
    walked = 0
    for method, path, op in openapi_routes(spec):
        if (method, path) in PUBLIC or (method, path) in OWN_CREATION:
            continue
        url = fill_path(path, values)
        headers_here = dict(headers)
        if method == "PATCH":
            headers_here["If-Match"] = w["etag"]
        if method == "GET":
            r = await client.get(url, params=query(op), headers=headers_here)
        else:
            assert (method, path) in writes, f"no body for {method} {path}: add one to bodies()"
            r = await client.request(method, url, params=query(op), json=writes[(method, path)], headers=headers_here)
        walked += 1
        assert r.status_code < 500, (who, method, path, r.status_code, r.text)
        if (method, path) in ADMIN_ONLY:
            ok = r.status_code == 403
        elif method != "GET" or "{" in path:
            ok = r.status_code in (403, 404)
        else:  # a list or report, asked for 莲都 and with no filter: refused, or nothing of 莲都 in it
            ok = True
            for answer in (r, await client.get(url, params=required_query(op), headers=headers_here)):
                assert answer.status_code < 500, (who, method, path, answer.status_code, answer.text)
                body = text_of(answer)
                ok = ok and (answer.status_code in (403, 404) or (
                    answer.status_code == 200 and w["b"]["uscc"] not in body and w["b"]["name"] not in body
                    and LIANDU not in body
                ))
        if not ok:
            leaks.append(f"{method} {path} -> {r.status_code} {r.text[:160]}")
    assert leaks == [], f"{who}:\n" + "\n".join(leaks)
    assert walked >= 15
    assert await state(clean, w) == before, "a refused write changed something"


async def test_the_owner_reads_every_route_with_the_same_values(client: httpx.AsyncClient, clean: AsyncEngine) -> None:
    """Control: 莲都's official gets 200 where the foreign identities got 404 (the values are valid)."""
    w = await world(client, clean)
    spec = (await client.get("/openapi.json")).json()
    values = path_values(w)
    for method, path, op in openapi_routes(spec):
        if method != "GET" or (method, path) in PUBLIC | ADMIN_ONLY:
            continue
        r = await client.get(fill_path(path, values), params=query(op), headers=LD)
        assert r.status_code == 200, (path, r.status_code, r.text)
        if "{" not in path and path != "/api/v1/targets/progress":
            assert w["b"]["uscc"] in text_of(r) or LIANDU in text_of(r), (path, r.text[:300])
