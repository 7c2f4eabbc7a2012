"""A killed import job (issue 16 item 7): requeued at once on the next start unless resubmitted, rows applied once.

The "killed" worker runs in a task on an engine of its own; after its first chunk's progress has committed it
is cancelled and its engine disposed, so every connection it held (the job's lease among them) is closed, as a
SIGKILL of the process would. The "restart" is the real start path, ``import_worker``, on another engine."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.registry.app import imports as cases
from services.registry.db.models import ImportJob
from services.registry.demo import to_csv
from shared.db import make_session_factory
from tests.harness import engine_for, wait_for
from tests.registry.conftest import scalar, scalar_rows
from tests.registry.helpers import LD, YH, register, uscc

ROWS = 25  # three chunks of 10
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Runtime:
    """What ``import_worker`` reads of a service runtime."""

    session_factory: async_sessionmaker[AsyncSession]
    stopping: asyncio.Event = field(default_factory=asyncio.Event)


def indicators_csv() -> bytes:
    rows: list[list[Any]] = [["统一社会信用代码", "年度", "营业收入(元)", "从业人员"]]
    rows += [[uscc(n), 2025, "30000000.00", 100 + n] for n in range(1, ROWS + 1)]
    return to_csv(rows)


@pytest.fixture
async def enterprises(client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> httpx.AsyncClient:
    for n in range(1, ROWS + 1):
        await register(client, n)
    monkeypatch.setattr(cases, "CHUNK", 10)
    return client


async def upload(client: httpx.AsyncClient, content: bytes, **params: str) -> str:
    r = await client.post("/api/v1/imports", params={"kind": "indicators", "mode": "all_or_nothing", **params},
                          headers=YH, files={"file": ("指标.csv", content, "text/csv")})
    assert r.status_code == 202, r.text
    job_id: str = r.json()["id"]
    return job_id


async def kill_after_first_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run one worker attempt until its first chunk's progress has committed, then kill it."""
    progress = cases._progress
    reached = asyncio.Event()

    async def stalling(factory: Any, job: ImportJob, **values: Any) -> None:
        await progress(factory, job, **values)
        if values.get("rows_done") == 10:
            reached.set()
            await asyncio.Event().wait()  # hangs here until killed

    monkeypatch.setattr(cases, "_progress", stalling)
    engine = engine_for("registry")
    task = asyncio.create_task(cases.process_next(make_session_factory(engine)))
    await asyncio.wait_for(reached.wait(), 20)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await engine.dispose()  # the process is gone: so are its sessions (and the job's lease)
    monkeypatch.setattr(cases, "_progress", progress)


@contextlib.asynccontextmanager
async def restarted() -> AsyncIterator[Runtime]:
    engine = engine_for("registry")
    runtime = Runtime(make_session_factory(engine))
    task = asyncio.create_task(cases.import_worker(runtime))
    try:
        yield runtime
    finally:
        runtime.stopping.set()
        await asyncio.wait_for(task, 10)
        await engine.dispose()


async def job_row(engine: AsyncEngine, job_id: str) -> dict[str, Any]:
    rows = await scalar_rows(engine, "SELECT status, attempts, rows_done, rows_imported, superseded_by, detail "
                             "FROM registry.import_jobs WHERE id = :i", i=uuid.UUID(job_id))
    status, attempts, done, imported, superseded_by, detail = rows[0]
    return {"status": status, "attempts": attempts, "rows_done": done, "rows_imported": imported,
            "superseded_by": superseded_by, "detail": detail}


async def revisions(engine: AsyncEngine) -> list[tuple[Any, ...]]:
    """(uscc, revision count) of the imported year, enterprises with more than one revision only."""
    return await scalar_rows(engine, "SELECT uscc, count(*) FROM registry.indicator_revisions WHERE year = 2025 "
                             "GROUP BY uscc HAVING count(*) <> 1")


async def test_killed_job_is_requeued_at_once_and_applied_once(
    enterprises: httpx.AsyncClient, clean: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = await upload(enterprises, indicators_csv())
    await kill_after_first_chunk(monkeypatch)
    killed = await job_row(clean, job_id)
    assert killed["status"] == "running" and killed["rows_done"] == 10 and killed["attempts"] == 1
    assert await scalar(clean, "SELECT count(*) FROM registry.indicator_revisions") == 0

    # a live worker's job is not taken away from it: its lease is held
    engine = engine_for("registry")
    lease = await cases.repo.take_lease(engine, uuid.UUID(job_id))
    assert lease is not None
    assert await cases.recover_interrupted(make_session_factory(engine)) == {"requeued": [], "superseded": []}
    await cases.repo.drop_lease(lease)
    await engine.dispose()

    async with restarted():  # the next start: no 15-minute wait
        async def finished() -> bool:
            return (await job_row(clean, job_id))["status"] == "done"

        await wait_for(finished, timeout=15, what="requeued import job")
    done = await job_row(clean, job_id)
    assert done["attempts"] == 2 and done["rows_imported"] == ROWS, done
    assert await scalar(clean, "SELECT count(*) FROM registry.indicator_revisions WHERE year = 2025") == ROWS
    assert await revisions(clean) == []
    assert await scalar(clean, "SELECT count(*) FROM registry.audit_log WHERE action = 'import.requeue' "
                        "AND object_id = :i", i=job_id) == 1

    # a later start finds nothing to do: the job is not run a third time
    async with restarted():
        await asyncio.sleep(1.5)
    assert (await job_row(clean, job_id))["attempts"] == 2
    assert await scalar(clean, "SELECT count(*) FROM registry.indicator_revisions WHERE year = 2025") == ROWS


# a worker process that claims the job and stops after its first chunk's progress has committed
CHILD = """
import asyncio
from services.registry.app import imports as cases
from shared.db import create_engine, make_session_factory
from shared.settings import Settings

cases.CHUNK = 10
progress = cases._progress


async def stalling(factory, job, **values):
    await progress(factory, job, **values)
    if values.get("rows_done") == 10:
        print("first chunk committed", flush=True)
        await asyncio.sleep(3600)


cases._progress = stalling


async def main():
    engine = create_engine(Settings(service="registry").database_url, pool_size=2)
    await cases.process_next(make_session_factory(engine))


asyncio.run(main())
"""


async def test_sigkilled_worker_process_job_is_requeued_and_applied_once(
    enterprises: httpx.AsyncClient, clean: AsyncEngine
) -> None:
    """The same with a real process and SIGKILL: no finally block runs; PostgreSQL ends the dead session."""
    job_id = await upload(enterprises, indicators_csv())
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", CHILD, stdout=asyncio.subprocess.PIPE,
                                                cwd=REPO)
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    assert line.strip() == b"first chunk committed", line
    proc.kill()  # SIGKILL
    await proc.wait()
    killed = await job_row(clean, job_id)
    assert killed["status"] == "running" and killed["rows_done"] == 10 and killed["attempts"] == 1

    async def session_ended() -> bool:  # the server notices the closed socket of the dead process
        lease = await cases.repo.take_lease(clean, uuid.UUID(job_id))
        if lease is not None:
            await cases.repo.drop_lease(lease)
        return lease is not None

    await wait_for(session_ended, timeout=5, what="the killed worker's session to end")
    async with restarted():
        async def finished() -> bool:
            return (await job_row(clean, job_id))["status"] == "done"

        await wait_for(finished, timeout=15, what="requeued import job")
    done = await job_row(clean, job_id)
    assert done["attempts"] == 2 and done["rows_imported"] == ROWS, done
    assert await scalar(clean, "SELECT count(*) FROM registry.indicator_revisions WHERE year = 2025") == ROWS
    assert await revisions(clean) == []


async def test_resubmitted_job_is_superseded_not_rerun(
    enterprises: httpx.AsyncClient, clean: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = indicators_csv()
    first = await upload(enterprises, content)
    await kill_after_first_chunk(monkeypatch)
    assert (await job_row(clean, first))["status"] == "running"

    # the operator sees the job hang and uploads the same file again; it runs and finishes
    second = await upload(enterprises, content)
    engine = engine_for("registry")
    factory = make_session_factory(engine)
    claimed = await cases.claim_job(factory)
    assert claimed is not None and str(claimed[0].id) == second
    await cases.repo.drop_lease(claimed[1])
    await engine.dispose()
    # (claimed by a worker that died at once: the second job is itself recovered on the restart and run there)

    async with restarted():
        async def settled() -> bool:
            return (await job_row(clean, second))["status"] == "done"

        await wait_for(settled, timeout=15, what="resubmitted import job")
    old = await job_row(clean, first)
    assert old["status"] == "superseded" and str(old["superseded_by"]) == second, old
    assert old["attempts"] == 1 and second in old["detail"]
    assert (await job_row(clean, second))["rows_imported"] == ROWS
    assert await scalar(clean, "SELECT count(*) FROM registry.indicator_revisions WHERE year = 2025") == ROWS
    assert await revisions(clean) == []
    r = await enterprises.get(f"/api/v1/jobs/{first}", headers=YH)
    assert r.status_code == 200 and r.json()["status"] == "superseded" and r.json()["superseded_by"] == second


async def test_attempt_that_lost_its_job_writes_nothing(
    enterprises: httpx.AsyncClient, clean: AsyncEngine
) -> None:
    """Fencing: an attempt whose job was requeued meanwhile (another attempt claimed it) writes no row."""
    job_id = await upload(enterprises, indicators_csv())
    engine = engine_for("registry")
    factory = make_session_factory(engine)
    claimed = await cases.claim_job(factory)
    assert claimed is not None
    job, lease = claimed
    await cases.repo.drop_lease(lease)
    async with factory() as s, s.begin():  # as a recovery then a second claim would leave it
        row = await s.get(ImportJob, job.id)
        assert row is not None
        row.attempts = 2
    await cases.run_job(factory, job)
    await engine.dispose()
    assert await scalar(clean, "SELECT count(*) FROM registry.indicator_revisions") == 0
    assert (await job_row(clean, job_id))["status"] == "running"


async def test_explicit_supersedes(enterprises: httpx.AsyncClient, clean: AsyncEngine,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """``supersedes=<job>`` on upload: a queued job is superseded at once; an interrupted one (a corrected file,
    another hash) is marked superseded on the next start instead of being rerun; refusals name the field."""
    queued = await upload(enterprises, indicators_csv())
    replacement = await upload(enterprises, indicators_csv() + b"\n", supersedes=queued)
    row = await job_row(clean, queued)
    assert row["status"] == "superseded" and str(row["superseded_by"]) == replacement
    for headers, status in ((YH, 409), (LD, 404)):
        r = await enterprises.post("/api/v1/imports", params={"kind": "indicators", "supersedes": queued},
                                   headers=headers, files={"file": ("x.csv", indicators_csv(), "text/csv")})
        assert r.status_code == status, r.text
        assert r.json()["errors"][0]["field"] == "supersedes"
    async with make_session_factory(clean)() as s, s.begin():  # (set aside: only the case below is to run)
        await s.execute(update(ImportJob).where(ImportJob.id == uuid.UUID(replacement)).values(status="failed"))

    interrupted = await upload(enterprises, indicators_csv())
    await kill_after_first_chunk(monkeypatch)
    corrected = indicators_csv().replace(b"30000000.00", b"31000000.00")
    fixed = await upload(enterprises, corrected, supersedes=interrupted)
    assert (await job_row(clean, interrupted))["status"] == "running"
    async with restarted():
        async def settled() -> bool:
            return (await job_row(clean, fixed))["status"] == "done"

        await wait_for(settled, timeout=15, what="corrected import job")
    old = await job_row(clean, interrupted)
    assert old["status"] == "superseded" and str(old["superseded_by"]) == fixed and old["attempts"] == 1, old
    assert await scalar(clean, "SELECT count(*) FROM registry.indicator_revisions WHERE year = 2025") == ROWS
    assert await revisions(clean) == []
