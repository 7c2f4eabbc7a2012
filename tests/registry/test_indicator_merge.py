"""Consistency of the merged effective indicator set (agency precedence), not only of each revision."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from services.registry.demo import to_csv
from tests.harness import auth, running_service, wait_for
from tests.registry.conftest import scalar
from tests.registry.helpers import YH, YUHANG, ent_auth, register

SELF = {
    "operating_revenue": "35000000",
    "main_business_revenue": "33000000",
    "employees": 120,
    "rd_staff": 20,
}
TAX = auth("agency", YUHANG, sub="余杭区税务局")
REVS = "SELECT count(*) FROM registry.indicator_revisions"
REPORTED = "SELECT count(*) FROM registry.outbox WHERE type = 'zjtx.registry.indicators.reported.v1'"


def fields(r: httpx.Response) -> list[str]:
    return [e["field"] for e in r.json()["errors"]]


async def test_revision_refused_when_the_effective_set_would_be_inconsistent(
    client: httpx.AsyncClient, clean: AsyncEngine
) -> None:
    code = (await register(client, 1))["uscc"]
    url = f"/api/v1/enterprises/{code}/indicators/2025"
    assert (await client.put(url, json={"indicators": SELF}, headers=ent_auth(code))).status_code == 200

    # the agency's 营业收入 below the self-reported 主营业务收入: consistent on its own, not once merged
    r = await client.put(url, json={"indicators": {"operating_revenue": "30000000"}}, headers=TAX)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert fields(r) == ["indicators.operating_revenue"]
    assert "主营业务收入不能大于营业收入" in r.json()["errors"][0]["message"]
    assert "indicators.operating_revenue" in r.json()["detail"]
    assert await scalar(clean, REVS) == 1 and await scalar(clean, REPORTED) == 1  # nothing stored, no event

    r = await client.put(url, json={"indicators": {"employees": 15}}, headers=TAX)  # fewer staff than 研发人员
    assert r.status_code == 422 and fields(r) == ["indicators.employees"], r.text

    r = await client.put(url, json={"indicators": {"operating_revenue": "34000000"}}, headers=TAX)
    assert r.status_code == 200, r.text
    assert r.json()["indicators"]["operating_revenue"] == "34000000.00"

    # a new self-report replaces the old one, but the agency's figure still takes precedence over it
    r = await client.put(
        url,
        json={"indicators": {**SELF, "operating_revenue": "36000000", "main_business_revenue": "34500000"}},
        headers=ent_auth(code),
    )
    assert r.status_code == 422 and fields(r) == ["indicators.main_business_revenue"], r.text
    assert await scalar(clean, REVS) == 2
    r = await client.put(
        url, json={"indicators": {**SELF, "main_business_revenue": "33500000"}}, headers=ent_auth(code)
    )
    assert r.status_code == 200, r.text
    got = (await client.get(url, headers=YH)).json()
    assert got["revision"] == 3 and got["indicators"]["operating_revenue"] == "34000000.00"
    assert got["indicators"]["main_business_revenue"] == "33500000.00"
    # another year is merged on its own
    r = await client.put(
        f"/api/v1/enterprises/{code}/indicators/2024", json={"indicators": {"operating_revenue": "1000"}}, headers=TAX
    )
    assert r.status_code == 200, r.text


async def test_import_rows_checked_against_the_effective_set(clean: AsyncEngine) -> None:
    async with running_service("registry", consumer=True) as (_, client):
        a = (await register(client, 11))["uscc"]
        b = (await register(client, 12))["uscc"]
        r = await client.put(
            f"/api/v1/enterprises/{a}/indicators/2025",
            json={"indicators": {"operating_revenue": "20000000"}},
            headers=TAX,
        )
        assert r.status_code == 200, r.text
        rows: list[list[Any]] = [
            ["统一社会信用代码", "年度", "营业收入(万元)", "主营业务收入(万元)"],
            [a, 2025, "2500", "2400"],  # 2400万 > the agency's 2000万 once merged
            [b, 2025, "2500", "2400"],
            [a, 2024, "2500", "2400"],
        ]
        resp = await client.post(
            "/api/v1/imports",
            params={"kind": "indicators", "mode": "accept_valid"},
            headers=YH,
            files={"file": ("指标.csv", to_csv(rows), "application/octet-stream")},
        )
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["id"]
        job: dict[str, Any] = {}

        async def finished() -> bool:
            nonlocal job
            job = (await client.get(f"/api/v1/jobs/{job_id}", headers=YH)).json()
            return job["status"] in ("done", "failed")

        await wait_for(finished, timeout=20, what="import job")
        assert job["status"] == "done" and job["rows_imported"] == 2, job
        assert [(e["row"], e["column"]) for e in job["errors"]] == [(2, "主营业务收入(万元)")]
        assert "营业收入" in job["errors"][0]["reason"]
        assert await scalar(clean, "SELECT count(*) FROM registry.indicator_revisions WHERE uscc = :u", u=a) == 2
        eff = (await client.get(f"/api/v1/enterprises/{a}/indicators/2025", headers=YH)).json()["indicators"]
        assert eff["operating_revenue"] == "20000000.00" and eff["main_business_revenue"] is None
