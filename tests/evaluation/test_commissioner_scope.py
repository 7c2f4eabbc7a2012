"""Commissioner scope in evaluation (issue 16 item 6): a commissioner reads only the enterprises currently
assigned to them (kept off notification's commissioner events, as in the registry), whatever region their token
names; a re-evaluation job is readable only within its rule set's jurisdiction."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.evaluation.db.models import Job
from services.evaluation.events.handlers import HANDLERS
from shared.events.envelope import CloudEvent
from tests.evaluation.conftest import add_enterprise, add_title
from tests.harness import auth, running_service

COUNTY = auth("county_official", "330110")
PROVINCE = auth("province_official", "330000")
MINE = auth("commissioner", "330110", sub="commissioner-1")
OTHER = auth("commissioner", "330110", sub="commissioner-2")


async def _commissioner_event(
    sf: async_sessionmaker[AsyncSession], kind: str, uscc: str, data: dict[str, Any], at: datetime
) -> None:
    event_type = f"zjtx.notification.commissioner.{kind}.v1"
    event = CloudEvent(id=str(uuid.uuid4()), source="/zjtx/notification", type=event_type, subject=uscc, time=at,
                       data={"uscc": uscc, "region_code": "330110", **data})
    async with sf() as s, s.begin():
        await HANDLERS[event_type](s, event)


async def _reads(client: httpx.AsyncClient, who: dict[str, str], uscc: str, rec: str, app: str) -> list[int]:
    return [
        (await client.get(f"/api/v1/enterprises/{uscc}/evaluations", headers=who)).status_code,
        (await client.get(f"/api/v1/enterprises/{uscc}/recognitions", headers=who)).status_code,
        (await client.get(f"/api/v1/recognitions/{rec}", headers=who)).status_code,
        (await client.get(f"/api/v1/applications/{app}", headers=who)).status_code,
    ]


async def test_commissioner_reads_only_assigned_enterprises(sf: async_sessionmaker[AsyncSession]) -> None:
    mine, other = await add_enterprise(sf), await add_enterprise(sf)
    today = date.today()
    recs = {u: await add_title(sf, u, "innovative", today - timedelta(days=30), today + timedelta(days=900))
            for u in (mine, other)}
    now = datetime.now(UTC)
    await _commissioner_event(sf, "assigned", mine, {"commissioner_id": "commissioner-1"}, now)
    await _commissioner_event(sf, "assigned", other, {"commissioner_id": "commissioner-9"}, now)
    async with running_service("evaluation") as (_, client):
        apps = {}
        for u in (mine, other):
            r = await client.post("/api/v1/applications", json={"uscc": u, "tier": "srdi", "batch_year": 2026},
                                  headers=COUNTY)
            assert r.status_code == 201, r.text
            apps[u] = r.json()["id"]
        assert await _reads(client, MINE, mine, str(recs[mine]), apps[mine]) == [200, 200, 200, 200]
        # the same county, not assigned: nothing (404, ids don't leak)
        assert await _reads(client, MINE, other, str(recs[other]), apps[other]) == [404, 404, 404, 404]
        assert await _reads(client, OTHER, mine, str(recs[mine]), apps[mine]) == [404, 404, 404, 404]
        listed = (await client.get("/api/v1/applications", headers=MINE)).json()["items"]
        assert [a["id"] for a in listed] == [apps[mine]]
        assert (await client.get("/api/v1/applications", headers=OTHER)).json()["items"] == []
        # a stale event does not undo a newer one; a newer release ends the scope
        await _commissioner_event(sf, "unavailable", mine, {}, now - timedelta(minutes=5))
        assert (await client.get(f"/api/v1/recognitions/{recs[mine]}", headers=MINE)).status_code == 200
        await _commissioner_event(sf, "released", mine, {"commissioner_id": "commissioner-1"},
                                  now + timedelta(minutes=5))
        assert await _reads(client, MINE, mine, str(recs[mine]), apps[mine]) == [404, 404, 404, 404]
        # officials keep their territory
        assert await _reads(client, COUNTY, other, str(recs[other]), apps[other]) == [200, 200, 200, 200]


async def test_reevaluation_job_readable_only_within_its_jurisdiction(sf: async_sessionmaker[AsyncSession]) -> None:
    job_id = uuid.uuid4()
    async with sf() as s, s.begin():  # T-srdi is a rule set of 330000 (the province)
        s.add(Job(id=job_id, kind="reevaluate", ruleset_id="T-srdi", status="done", requested_by="p"))
    async with running_service("evaluation") as (_, client):
        assert (await client.get(f"/api/v1/reevaluations/{job_id}", headers=PROVINCE)).status_code == 200
        for who in (COUNTY, auth("city_official", "330100")):
            assert (await client.get(f"/api/v1/reevaluations/{job_id}", headers=who)).status_code == 404
