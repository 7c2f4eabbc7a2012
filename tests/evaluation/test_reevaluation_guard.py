"""Re-evaluation jobs under misuse and failure (issue 16 item 9): one live job per rule set (a second request
answers 409 naming the running job), and a job whose process died does not block the rule set for ever."""

from __future__ import annotations

import uuid

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.evaluation.db.evaluations import job_lock_key, try_lock, unlock
from services.evaluation.db.models import Job
from tests.harness import auth, running_service

PROVINCE = auth("province_official", "330000")


async def test_second_reevaluation_of_a_rule_set_answers_409_naming_the_running_job(
    engine: AsyncEngine, sf: async_sessionmaker[AsyncSession],
) -> None:
    running = uuid.uuid4()
    async with sf() as s, s.begin():
        s.add(Job(id=running, kind="reevaluate", ruleset_id="T-srdi", status="running", requested_by="other"))
    key = job_lock_key("reevaluate", "T-srdi")
    holder = await engine.connect()  # the running job's process (it holds the lock for the job's life)
    try:
        assert await try_lock(holder, key)
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
            await unlock(holder, key)
            r = await client.post("/api/v1/rulesets/T-srdi/reevaluate", headers=PROVINCE)
            assert r.status_code == 202, r.text
    finally:
        await holder.close()


async def test_a_job_whose_process_died_is_superseded(sf: async_sessionmaker[AsyncSession]) -> None:
    """Left ``running`` by a process that died (nobody holds its lock): marked failed, and the new job runs."""
    orphan = uuid.uuid4()
    async with sf() as s, s.begin():
        s.add(Job(id=orphan, kind="reevaluate", ruleset_id="T-srdi", status="running", requested_by="gone"))
    async with running_service("evaluation") as (_, client):
        r = await client.post("/api/v1/rulesets/T-srdi/reevaluate", headers=PROVINCE)
        assert r.status_code == 202, r.text
        new = r.json()["job_id"]
    async with sf() as s:
        old = (await s.execute(select(Job).where(Job.id == orphan))).scalar_one()
    assert old.status == "failed" and new in (old.error or "")
