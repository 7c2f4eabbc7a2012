"""Every route of evaluation's OpenAPI, walked with each role of a foreign identity (issue 16 "a generated test
walks every route of every service's OpenAPI"), as ``tests/registry/test_route_matrix.py`` does for registry.

Two counties hold real data: 余杭 (杭州) enterprise A and 莲都 (丽水) enterprise B with B's evaluation, an
application in publicity with an open objection, a recognition and a re-evaluation job of a 莲都 rule set. Each
identity on the 杭州 side (county and city officials, enterprise A, A's commissioner, a 杭州 agency) calls every
route with B's objects in the path: a route naming B's data answers 404 or 403, a list shows none of it, a write
changes nothing (no audit row, B's objects unchanged), and no answer is a 5xx. A new route is walked without
editing this file; one the walk cannot fill fails the test until it is given values here. The owner (莲都's
county official) reads every route with the same values (200), so the 404s are about ownership."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.evaluation.app.evaluating import evaluate_and_store
from services.evaluation.db.models import Job
from services.evaluation.db.ruleset_store import upsert_rulesets
from services.evaluation.domain.rules import RuleSet
from services.evaluation.events.handlers import HANDLERS
from shared.events.envelope import CloudEvent
from tests.evaluation.conftest import TEST_RULESETS, add_enterprise, add_title
from tests.harness import auth, fill_path, openapi_routes, running_service

YUHANG, LIANDU = "330110", "331102"
LD = auth("county_official", LIANDU, sub="ld-county")
LD_CITY = auth("city_official", "331100", sub="ls-city")
PROVINCE = auth("province_official", "330000", sub="prov-a")

# reference data and service endpoints: nobody's data
PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/api/v1/rulesets"),
    ("GET", "/api/v1/rulesets/{ruleset_id}"),
    ("GET", "/api/v1/contracts"),
    ("GET", "/api/v1/contracts/{event_type}"),
    ("GET", "/api/v1/dev/clock"),
    ("POST", "/api/v1/evaluations/preview"),  # a self-assessment of the indicators sent; nothing stored
}
ADMIN_ONLY = {("GET", "/api/v1/admin/outbox/parked"), ("PUT", "/api/v1/dev/clock"), ("DELETE", "/api/v1/dev/clock")}
# answers computed over the caller's own territory (lists, simulations): refused, or nothing of 莲都 in them
LISTS = {("GET", "/api/v1/applications"), ("POST", "/api/v1/simulations")}

IDENTITIES = {
    "county_official 余杭": auth("county_official", YUHANG, sub="yh-county"),
    "city_official 杭州": auth("city_official", "330100", sub="hz-city"),
    "enterprise A": "enterprise",
    "commissioner of A": auth("commissioner", "330100", sub="cm-yh"),
    "agency 杭州": auth("agency", "330100", sub="杭州市税务局"),
}


async def _assign(sf: async_sessionmaker[AsyncSession], uscc: str, commissioner: str) -> None:
    event_type = "zjtx.notification.commissioner.assigned.v1"
    event = CloudEvent(id=str(uuid.uuid4()), source="/zjtx/notification", type=event_type, subject=uscc,
                       time=datetime.now(UTC),
                       data={"uscc": uscc, "region_code": YUHANG, "commissioner_id": commissioner})
    async with sf() as s, s.begin():
        await HANDLERS[event_type](s, event)


async def world(client: httpx.AsyncClient, sf: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    a, b = await add_enterprise(sf, YUHANG), await add_enterprise(sf, LIANDU)
    async with sf() as s, s.begin():
        await evaluate_and_store(s, b, date.today().year - 1, date.today(), ruleset_ids={"T-srdi"})
    r = await client.post("/api/v1/applications", json={"uscc": b, "tier": "srdi", "batch_year": 2026},
                          headers=auth("enterprise", LIANDU, uscc=b))
    assert r.status_code == 201, r.text
    app = r.json()["id"]
    for stage, who in (("county", LD), ("city", LD_CITY), ("province", PROVINCE)):
        r = await client.post(f"/api/v1/applications/{app}/reviews", headers=who,
                              json={"stage": stage, "decision": "approved", "comment": "同意"})
        assert r.status_code == 200, r.text
    r = await client.post(f"/api/v1/applications/{app}/objections", json={"content": "数据存疑"}, headers=LD)
    assert r.status_code == 201, r.text
    objection = r.json()["id"]
    today = date.today()
    rec = await add_title(sf, b, "innovative", today - timedelta(days=30), today + timedelta(days=900), region=LIANDU)
    doc = yaml.safe_load((TEST_RULESETS / "T-srdi.yaml").read_text(encoding="utf-8"))
    doc.update(id="T-liandu-srdi", title="测试用莲都区专精特新认定条件", level="county", jurisdiction=LIANDU)
    job = uuid.uuid4()
    async with sf() as s, s.begin():
        await upsert_rulesets(s, [RuleSet.model_validate(doc)], publish=False)
        s.add(Job(id=job, kind="reevaluate", ruleset_id="T-liandu-srdi", status="done", requested_by="ld-county"))
    await _assign(sf, a, "cm-yh")
    return {"a": a, "b": b, "app": app, "objection": objection, "rec": str(rec), "job": str(job)}


def path_values(w: dict[str, Any]) -> dict[str, str]:
    return {"uscc": w["b"], "app_id": w["app"], "objection_id": w["objection"], "rec_id": w["rec"],
            "job_id": w["job"], "ruleset_id": "T-liandu-srdi"}


def bodies(w: dict[str, Any]) -> dict[tuple[str, str], Any]:
    """A valid body per write route (so the call reaches the authorisation, not the validation)."""
    later = (date.today() + timedelta(days=60)).isoformat()
    return {
        ("POST", "/api/v1/applications"): {"uscc": w["b"], "tier": "innovative", "batch_year": 2026},
        ("POST", "/api/v1/applications/{app_id}/reviews"): {"stage": "province", "decision": "rejected",
                                                            "comment": "越权审核"},
        ("POST", "/api/v1/applications/{app_id}/objections"): {"content": "越权异议"},
        ("POST", "/api/v1/applications/{app_id}/objections/{objection_id}/resolve"): {
            "outcome": "upheld", "resolution": "越权处理"},
        ("POST", "/api/v1/applications/{app_id}/announce"): {"announced_on": later},
        ("POST", "/api/v1/applications/{app_id}/resubmit"): {"comment": "越权"},
        ("POST", "/api/v1/applications/{app_id}/withdraw"): {"comment": "越权"},
        ("POST", "/api/v1/recognitions/{rec_id}/revoke"): {"ground": "data_fraud", "evidence": "越权撤销"},
        ("POST", "/api/v1/rulesets/{ruleset_id}/reevaluate"): None,
        ("POST", "/api/v1/simulations"): {"base_ruleset": "T-srdi", "changes": [{"path": "pass_score", "value": 0}]},
        ("PUT", "/api/v1/dev/clock"): {"as_of": later},
        ("DELETE", "/api/v1/dev/clock"): None,
    }




async def state(sf: async_sessionmaker[AsyncSession], w: dict[str, Any]) -> tuple[Any, ...]:
    async with sf() as s:
        async def one(sql: str, **kw: Any) -> Any:
            return (await s.execute(text(sql), kw)).scalar()

        return (
            await one("SELECT count(*) FROM evaluation.audit_log"),
            await one("SELECT count(*) FROM evaluation.applications"),
            await one("SELECT state || jsonb_array_length(history) FROM evaluation.applications WHERE id = :i",
                      i=uuid.UUID(w["app"])),
            await one("SELECT string_agg(status, ',' ORDER BY id) FROM evaluation.objections"),
            await one("SELECT string_agg(status, ',' ORDER BY id) FROM evaluation.recognitions"),
            await one("SELECT count(*) FROM evaluation.jobs"),
            await one("SELECT count(*) FROM evaluation.evaluations"),
        )


@pytest.mark.parametrize("who", list(IDENTITIES))
async def test_foreign_identity_gets_nothing_of_another_county(
    sf: async_sessionmaker[AsyncSession], who: str
) -> None:
    async with running_service("evaluation") as (_, client):
        w = await world(client, sf)
        ident = IDENTITIES[who]
        headers = auth("enterprise", YUHANG, uscc=w["a"]) if ident == "enterprise" else ident
        assert isinstance(headers, dict)
        spec = (await client.get("/openapi.json")).json()
        values, writes = path_values(w), bodies(w)
        before = await state(sf, w)
        leaks: list[str] = []
        walked = 0
        for method, path, _ in openapi_routes(spec):
            if (method, path) in PUBLIC:
                continue
            url = fill_path(path, values)
            if method == "GET":
                r = await client.get(url, headers=headers)
            else:
                assert (method, path) in writes, f"no body for {method} {path}: add one to bodies()"
                r = await client.request(method, url, json=writes[(method, path)], headers=headers)
            walked += 1
            assert r.status_code < 500, (who, method, path, r.status_code, r.text)
            if (method, path) in ADMIN_ONLY:
                ok = r.status_code == 403
            elif (method, path) in LISTS:
                ok = r.status_code in (403, 404) or (r.status_code == 200 and w["b"] not in r.text
                                                     and w["app"] not in r.text and LIANDU not in r.text)
            else:
                ok = r.status_code in (403, 404)
            if not ok:
                leaks.append(f"{method} {path} -> {r.status_code} {r.text[:160]}")
        assert leaks == [], f"{who}:\n" + "\n".join(leaks)
        assert walked >= 19
        assert await state(sf, w) == before, "a refused write changed something"


async def test_the_owner_reads_every_route_with_the_same_values(sf: async_sessionmaker[AsyncSession]) -> None:
    """Control: 莲都's county official gets 200 where the foreign identities got 404 (the values are valid)."""
    async with running_service("evaluation") as (_, client):
        w = await world(client, sf)
        spec = (await client.get("/openapi.json")).json()
        values = path_values(w)
        for method, path, _ in openapi_routes(spec):
            if method != "GET" or (method, path) in PUBLIC | ADMIN_ONLY:
                continue
            r = await client.get(fill_path(path, values), headers=LD)
            assert r.status_code == 200, (path, r.status_code, r.text)
            if "{" not in path:
                assert w["b"] in r.text, (path, r.text[:300])
