"""Every route of notification's OpenAPI, walked with each role of a foreign identity (issue 16 "a generated test
walks every route of every service's OpenAPI"), as ``tests/registry/test_route_matrix.py`` does for registry.

Two counties hold real data: 余杭 (杭州) with enterprise A and its commissioner, 莲都 (丽水) with enterprise B, its
commissioner ``cm-ld`` (assigned on B's recognition) and B's notices. Each identity on the 杭州 side (county and city
officials, enterprise A, A's commissioner, a 杭州 agency) calls every route with 莲都's objects in the path and 莲都
in the query: a route naming them answers 404 or 403, a list shows none of them (one's own inbox and preferences
are the caller's), a write changes nothing (no audit row, commissioners, assignments and notices unchanged), and no
answer is a 5xx. A new route is walked without editing this file; one the walk cannot fill fails until it is given
values here. The owner (莲都's county official) reads every route with the same values (200)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notification.fake_providers import Mailbox
from tests.harness import auth, fill_path, openapi_routes, running_service, walk_as
from tests.notification.conftest import apply, event, recognised, registered, uscc

YUHANG, LIANDU = "330110", "331102"
LD = auth("county_official", LIANDU, sub="ld-county")
YH = auth("county_official", YUHANG, sub="yh-county")
A, B = uscc(YUHANG), uscc(LIANDU)

PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/api/v1/contracts"),
    ("GET", "/api/v1/contracts/{event_type}"),
}
ADMIN_ONLY = {("GET", "/api/v1/admin/outbox/parked")}
# the caller's own notification preferences: naming nobody else's data
OWN = {("PUT", "/api/v1/notifications/preferences")}

IDENTITIES = {
    "county_official 余杭": YH,
    "city_official 杭州": auth("city_official", "330100", sub="hz-city"),
    "enterprise A": auth("enterprise", YUHANG, uscc=A),
    "commissioner of A": auth("commissioner", YUHANG, sub="cm-yh"),
    "agency 杭州": auth("agency", "330100", sub="杭州市税务局"),
}


async def _commissioner(client: httpx.AsyncClient, cid: str, region: str, headers: dict[str, str]) -> None:
    r = await client.post("/api/v1/commissioners", headers=headers, json={
        "id": cid, "name": f"专员{cid}", "mobile": "13700000000", "email": f"{cid}@gov.example.cn",
        "region": region, "level": "county", "capacity": 5})
    assert r.status_code == 201, r.text


async def world(client: httpx.AsyncClient, sf: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    await _commissioner(client, "cm-ld", LIANDU, LD)
    await _commissioner(client, "cm-yh", YUHANG, YH)
    for u, region in ((A, YUHANG), (B, LIANDU)):
        await apply(sf, registered(u, region, f"企业{u[-4:]}", "13900000000", f"{u[-4:]}@example.cn"))
        await apply(sf, recognised(u, region, "innovative", level="province"))
        await apply(sf, event("zjtx.evaluation.publicity.started.v1", u, {
            "application_id": f"app-{u}", "uscc": u, "region_code": region, "tier": "srdi",
            "starts_on": "2026-11-20", "ends_on": "2026-11-27"}, region))
    async with sf() as s:
        assigned = (await s.execute(text("SELECT commissioner_id FROM notification.assignments WHERE uscc = :u"),
                                    {"u": B})).scalar()
        notice = (await s.execute(text("SELECT min(id) FROM notification.notices WHERE uscc = :u"), {"u": B})).scalar()
    assert assigned == "cm-ld" and notice is not None
    return {"notice": str(notice)}


def path_values(w: dict[str, Any]) -> dict[str, str]:
    return {"uscc": B, "cid": "cm-ld", "notice_id": w["notice"]}


def bodies() -> dict[tuple[str, str], Any]:
    """A valid body per write route (so the call reaches the authorisation, not the validation)."""
    return {
        ("POST", "/api/v1/commissioners"): {"id": "cm-foreign", "name": "越权专员", "mobile": "13700000001",
                                            "email": "x@gov.example.cn", "region": LIANDU, "level": "county",
                                            "capacity": 5},
        ("PATCH", "/api/v1/commissioners/{cid}"): {"capacity": 9},
        ("POST", "/api/v1/enterprises/{uscc}/commissioner"): {"commissioner_id": "cm-yh", "reason": "越权调整"},
        ("POST", "/api/v1/notifications/{notice_id}/read"): None,
    }




def query(op: dict[str, Any]) -> dict[str, Any]:
    names = {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
    return {k: v for k, v in {"region": LIANDU, "year": 2026}.items() if k in names}


async def state(sf: async_sessionmaker[AsyncSession]) -> tuple[Any, ...]:
    async with sf() as s:
        async def one(sql: str) -> Any:
            return (await s.execute(text(sql))).scalar()

        return (
            await one("SELECT count(*) FROM notification.audit_log"),
            await one("SELECT string_agg(id || capacity || active, ',' ORDER BY id) FROM notification.commissioners"),
            await one("SELECT string_agg(uscc || commissioner_id, ',' ORDER BY uscc) FROM notification.assignments"),
            await one("SELECT count(*) FROM notification.notices WHERE read_at IS NOT NULL"),
        )


@pytest.mark.parametrize("who", list(IDENTITIES))
async def test_foreign_identity_gets_nothing_of_another_county(
    clean: Mailbox, providers: tuple[Mailbox, dict[str, Any]], sf: async_sessionmaker[AsyncSession], who: str
) -> None:
    headers = IDENTITIES[who]
    async with running_service("notification", **providers[1]) as (_, client):
        w = await world(client, sf)
        spec = (await client.get("/openapi.json")).json()
        values, writes = path_values(w), bodies()
        before = await state(sf)
        leaks: list[str] = []
        walked = await walk_as(client, spec, PUBLIC | OWN, values, writes, query, headers)
        for method, path, answers in walked:
            for r in answers:
                assert r.status_code < 500, (who, method, path, r.status_code, r.text)
                if (method, path) in ADMIN_ONLY:
                    ok = r.status_code == 403
                elif method == "GET" and "{" not in path:
                    ok = r.status_code in (403, 404) or (
                        r.status_code == 200 and B not in r.text and "cm-ld" not in r.text and LIANDU not in r.text)
                else:
                    ok = r.status_code in (403, 404)
                if not ok:
                    leaks.append(f"{method} {path} -> {r.status_code} {r.text[:160]}")
        assert leaks == [], f"{who}:\n" + "\n".join(leaks)
        assert len(walked) >= 12
        assert await state(sf) == before, "a refused write changed something"


async def test_the_owner_reads_every_route_with_the_same_values(
    clean: Mailbox, providers: tuple[Mailbox, dict[str, Any]], sf: async_sessionmaker[AsyncSession]
) -> None:
    """Control: 莲都's county official gets 200 where the foreign identities got 404 (the values are valid)."""
    async with running_service("notification", **providers[1]) as (_, client):
        w = await world(client, sf)
        spec = (await client.get("/openapi.json")).json()
        values = path_values(w)
        for method, path, op in openapi_routes(spec):
            if method != "GET" or (method, path) in PUBLIC | ADMIN_ONLY:
                continue
            r = await client.get(fill_path(path, values), params=query(op), headers=LD)
            assert r.status_code == 200, (path, r.status_code, r.text)
