"""An interrupted re-evaluation job resumes from its last committed batch (issue 16 item 9): a job run by another
process, SIGKILLed after some batches committed, is resumed when the service starts and completes with exactly
one result per covered enterprise (none evaluated twice, none skipped)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
import uuid
from datetime import date

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.evaluation.app import workers
from services.evaluation.app.reevaluation import resume_interrupted
from services.evaluation.db.models import Enterprise, Evaluation, IndicatorReport, Job
from tests.evaluation.conftest import new_uscc
from tests.harness import running_service, runtime_of, wait_for

N = 400  # enterprises in 余杭 (covered by T-srdi)
BATCH = 20

# The job's process: holds the rule set's job lock like a job the API started, writes slowly (so the test can
# kill it between batches), and is SIGKILLed by the test.
CHILD = textwrap.dedent("""
    import asyncio, sys, uuid
    from services.evaluation.app import reevaluation
    from services.evaluation.db.evaluations import job_lock_key, try_lock
    from shared.db import create_engine, make_session_factory
    from shared.settings import Settings

    async def main() -> None:
        engine = create_engine(Settings(service="evaluation").database_url, pool_size=2)
        lease = await engine.connect()
        assert await try_lock(lease, job_lock_key("reevaluate", "T-srdi"))
        write = reevaluation._write

        async def slow_write(*args):  # a slow database: a batch every ~0.2 s
            await write(*args)
            await asyncio.sleep(0.2)

        reevaluation._write = slow_write
        await reevaluation.start_reevaluation(make_session_factory(engine), uuid.UUID(sys.argv[1]), "T-srdi",
                                              batch_size=int(sys.argv[2]), workers=0)

    asyncio.run(main())
""")


async def _seed(sf: async_sessionmaker[AsyncSession]) -> list[str]:
    usccs = sorted(new_uscc("330110") for _ in range(N))
    year = date.today().year - 1
    async with sf() as s, s.begin():
        await s.execute(insert(Enterprise), [
            {"uscc": u, "name": "测试企业", "region_code": "330110", "status": "active", "version": 1} for u in usccs])
        await s.execute(insert(IndicatorReport), [
            {"uscc": u, "year": year, "revision": 1, "region_code": "330110",
             "indicators": {"operating_revenue": str(40_000_000 + i), "rd_expense": "3000000"}}
            for i, u in enumerate(usccs)])
    return usccs


async def _job(sf: async_sessionmaker[AsyncSession], job_id: uuid.UUID) -> Job:
    async with sf() as s:
        return (await s.execute(select(Job).where(Job.id == job_id))).scalar_one()


async def _results(sf: async_sessionmaker[AsyncSession], job_id: uuid.UUID) -> tuple[int, int]:
    async with sf() as s:
        row = (await s.execute(select(func.count(), func.count(func.distinct(Evaluation.uscc)))
                               .where(Evaluation.job_id == job_id))).one()
    return int(row[0]), int(row[1])


async def test_a_killed_job_resumes_from_its_last_committed_batch(
    engine: AsyncEngine, sf: async_sessionmaker[AsyncSession],
) -> None:
    usccs = await _seed(sf)
    job_id = uuid.uuid4()
    async with sf() as s, s.begin():
        s.add(Job(id=job_id, kind="reevaluate", ruleset_id="T-srdi", status="queued", requested_by="province"))
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", CHILD, str(job_id), str(BATCH), cwd=os.getcwd())
    try:
        async def some_batches() -> bool:
            assert child.returncode is None, "the job's process exited before it was killed"
            return (await _job(sf, job_id)).done >= 3 * BATCH

        await wait_for(some_batches, timeout=60, what="three committed batches")
        # alive (it holds the lock): a resume pass leaves it alone
        assert await resume_interrupted(engine, sf) == 0
        child.send_signal(signal.SIGKILL)
        await asyncio.wait_for(child.wait(), timeout=10)
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    killed = await _job(sf, job_id)
    assert killed.status == "running" and BATCH <= killed.done < N, (killed.status, killed.done)
    assert await _results(sf, job_id) == (killed.done, killed.done)  # progress = committed results

    async with running_service("evaluation", consumer=True) as (app, _):  # consumer=True: with its workers
        key = id(runtime_of(app))

        async def started() -> bool:
            return key in workers.RESUME_PASSES

        await wait_for(started, what="the resume pass")
        pass_ = workers.RESUME_PASSES[key]

        async def finished() -> bool:
            return pass_.done() and (await _job(sf, job_id)).status != "running"

        # PostgreSQL notices the killed client's connection and frees its lock; the start-up pass resumes
        await asyncio.wait_for(asyncio.shield(pass_), timeout=120)
        await wait_for(finished, timeout=60, what="the resumed job")
    job = await _job(sf, job_id)
    assert job.status == "done", (job.status, job.error)
    assert job.total == job.done == N
    assert await _results(sf, job_id) == (N, N)  # one result per enterprise: none twice, none skipped
    async with sf() as s:
        evaluated = set((await s.execute(select(Evaluation.uscc).where(Evaluation.job_id == job_id))).scalars())
    assert evaluated == set(usccs)
