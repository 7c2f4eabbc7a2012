"""Re-evaluation jobs under misuse (issue 16 item 9): one unfinished job per rule set; a second request answers
409 naming the running job, and a new one is accepted once it has finished."""

from __future__ import annotations

import uuid

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.evaluation.db.models import Job
from tests.harness import auth, running_service

PROVINCE = auth("province_official", "330000")


async def test_second_reevaluation_of_a_rule_set_answers_409_naming_the_running_job(
    sf: async_sessionmaker[AsyncSession],
) -> None:
    running = uuid.uuid4()
    async with sf() as s, s.begin():
        s.add(Job(id=running, kind="reevaluate", ruleset_id="T-srdi", status="running", requested_by="other"))
    async with running_service("evaluation") as (_, client):
        r = await client.post("/api/v1/rulesets/T-srdi/reevaluate", headers=PROVINCE)
        assert r.status_code == 409, r.text
        body = r.json()
        assert body["job_id"] == str(running) and body["job_status"] == "running"
        assert str(running) in body["detail"] and "T-srdi" in body["detail"]
        # another rule set is not blocked
        r = await client.post("/api/v1/rulesets/T-giant/reevaluate", headers=PROVINCE)
        assert r.status_code == 202, r.text
        # once the running job has finished, a new one is accepted
        async with sf() as s, s.begin():
            await s.execute(update(Job).where(Job.id == running).values(status="done"))
        r = await client.post("/api/v1/rulesets/T-srdi/reevaluate", headers=PROVINCE)
        assert r.status_code == 202, r.text
