"""Re-evaluation job: every affected enterprise under one rule set, in batches (batched reads, bulk inserts,
outbox rows in bulk)."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import logging
import uuid
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, date, datetime
from decimal import Decimal
from json.encoder import encode_basestring as _s
from typing import Any

from sqlalchemy import exists, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.evaluation.app.evaluating import COMPLETED, event_gaps, gap_summary
from services.evaluation.app.processes import KeptPool
from services.evaluation.config import get_config
from services.evaluation.db import evaluations as evaluations_db
from services.evaluation.db.explanations import store_templates
from services.evaluation.db.models import Enterprise, IndicatorReport, Job, backbone
from services.evaluation.db.reports import LATEST_REPORTS
from services.evaluation.db.ruleset_store import latest_rulesets
from shared.audit import record_audit
from shared.db import driver_connection
from shared.events.encoder import COPY_NULL, OutboxCopy, copy_json, copy_outbox, copy_text
from shared.gc_control import collector_paused, freeze_survivors
from shared.ids import uuid7_str
from shared.settings import get_settings

log = logging.getLogger(__name__)


class _EventTexts:
    """The outbox rows (COPY text lines) of a batch's ``evaluation.completed`` events: the envelope by shared's
    bulk encoder (``OutboxCopy``, stamped once per batch), the payload from text fragments shared by the batch
    (what ``json.dumps`` of the payload writes) instead of a dict and an encoder pass per row."""

    __slots__ = ("max_unmet", "outbox", "payload_tail")

    def __init__(self, stamp: str, as_of: date) -> None:
        self.outbox = OutboxCopy(backbone.service, COMPLETED, stamp)
        self.payload_tail = f',"as_of":"{as_of.isoformat()}","results":['
        self.max_unmet = get_config().gap_event_max_unmet  # gaps only up to this many unmet conditions

    def payload(self, uscc: str, region: str | None, year: int, summary: dict[str, Any], unmet: int,
                gaps: list[str]) -> str:
        score = summary["score"]
        chosen = event_gaps(summary["eligible"], unmet, gaps, self.max_unmet)
        return (f'{{"uscc":{_s(uscc)},"region_code":{"null" if region is None else _s(region)},"year":{int(year)}'
                f'{self.payload_tail}{{"ruleset_id":{_s(summary["ruleset_id"])},"tier":{_s(summary["tier"])},'
                f'"eligible":{"true" if summary["eligible"] else "false"},'
                f'"score":{"null" if score is None else _s(score)},"level":{_s(summary["level"])},'
                f'"unmet":{int(unmet)},"gaps":{_gaps_json(chosen)}}}]}}')

    def line(self, uscc: str, region: str | None, year: int, summary: dict[str, Any], unmet: int,
             gaps: list[str]) -> str:
        return self.outbox.line(uscc, self.payload(uscc, region, year, summary, unmet, gaps), region)[1]


def _n(v: str | None) -> str:
    return "null" if v is None else _s(v)


_GAP_JSON: dict[str, str] = {}  # a gap's compact text → its GapSummary JSON (memoised gaps repeat their texts)


def _gap_json(text: str) -> str:
    """One gap (its compact text, as the walk wrote it) as ``GapSummary``'s JSON writes it (its keys in order)."""
    got = _GAP_JSON.get(text)
    if got is None:
        g = gap_summary(text)
        got = (f'{{"code":{_n(g["code"])},"description":{_n(g["description"])},"metric":{_n(g["metric"])},'
               f'"unit":{_n(g["unit"])},"current":{_n(g["current"])},"required":{_n(g["required"])},'
               f'"shortfall":{_n(g["shortfall"])},"yuan_needed":{_n(g["yuan_needed"])}}}')
        if len(_GAP_JSON) >= 4096:
            _GAP_JSON.clear()
        _GAP_JSON[text] = got
    return got


def _gaps_json(gaps: list[str] | None) -> str:
    """The ``gaps`` of a result (their compact texts) as ``GapSummary``'s JSON writes them."""
    if gaps is None:
        return "null"
    return "[" + ",".join([_gap_json(g) for g in gaps]) + "]"


def clip_as_of(rs: Any, as_of: date) -> date:
    if as_of < rs.effective_from:
        return rs.effective_from  # type: ignore[no-any-return]
    if rs.effective_to is not None and as_of > rs.effective_to:
        return rs.effective_to  # type: ignore[no-any-return]
    return as_of


_BATCH = LATEST_REPORTS + " AND e.uscc > $1 ORDER BY e.uscc LIMIT $2"


async def _batch(session: AsyncSession, after: str, size: int) -> list[Any]:
    """Active enterprises after ``after`` (keyset) with their latest indicator report (as JSON text), as rows of
    the driver (read straight into the worker's tuples)."""
    raw = await driver_connection(session)
    return list(await raw.fetch(_BATCH, after, size))


async def _inputs(session: AsyncSession, rs: Any, rows: list[Any]) -> list[tuple[Any, ...]]:
    """Plain tuples (picklable) for the evaluation of the rows ``rs`` covers, titles read in one query."""
    covered: dict[str, bool] = {}
    for region in {r[1] for r in rows}:
        covered[region] = bool(rs.covers_region(region))
    # plain tuples (uscc, region_code, founded_on, industry_code, is_manufacturing, year, indicators)
    mine = [tuple(r) for r in rows if covered[r[1]]]
    if not mine:
        return []
    titles: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    recs = (
        await session.execute(
            text("SELECT uscc, tier, level, valid_from, valid_to, status FROM evaluation.recognitions "
                 "WHERE uscc = ANY(:usccs)"),
            {"usccs": [r[0] for r in mine]},
        )
    ).all()
    for uscc, tier, level, valid_from, valid_to, status in recs:
        titles[uscc].append((tier, level, valid_from, valid_to, status == "revoked"))
    no_titles: list[tuple[Any, ...]] = []
    from services.evaluation.app.credit import credit_overrides, with_overrides  # (credit imports evaluating)

    # the agencies' credit listings, as evaluate_and_store applies them
    credit = await credit_overrides(session, [r[0] for r in mine], get_config().decision_date())
    return [
        (uscc, region, year, founded_on, industry, is_mfg, with_overrides(indicators, credit.get(uscc)),
         titles.get(uscc, no_titles))
        for uscc, region, founded_on, industry, is_mfg, year, indicators in mine
    ]


_EVALUATION_COLUMNS = ["id", "uscc", "region_code", "year", "ruleset_id", "ruleset_version", "tier", "level",
                       "as_of", "eligible", "score", "explanation_template", "explanation_values", "trigger", "job_id"]


async def _write(
    session_factory: async_sessionmaker[AsyncSession], parts: list[tuple[int, bytes, bytes]], job_id: uuid.UUID,
    done: int,
) -> None:
    """One transaction: COPY the results (the explanation's varying part; the rule set's template is stored
    once when the job starts) and their outbox rows, as the evaluation wrote them (``_eval_chunk``), and record
    progress. ``created_at`` of both is the transaction's ``now()``."""
    async with session_factory() as session, session.begin():
        if any(n for n, _, _ in parts):
            raw = await driver_connection(session)
            await raw.copy_to_table("evaluations", schema_name="evaluation", columns=_EVALUATION_COLUMNS,
                                    source=_chunks([p[1] for p in parts]), format="text")
            await copy_outbox(session, backbone, [p[2] for p in parts])
        await session.execute(update(Job).where(Job.id == job_id).values(done=done))


async def _chunks(parts: list[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def committed_progress(session: AsyncSession, job_id: uuid.UUID) -> tuple[str, int]:
    """Where an interrupted job resumes: the last enterprise key and the count of its committed results.

    Each batch's results carry the job's id and commit with its progress in one transaction, batches are
    committed in key order (one write in flight) and every covered enterprise of a batch yields a result, so
    the committed results are exactly the enterprises up to their greatest key."""
    row = (await session.execute(
        text("SELECT coalesce(max(uscc), ''), count(*) FROM evaluation.evaluations WHERE job_id = :j"),
        {"j": job_id},
    )).one()
    return str(row[0]), int(row[1])


async def start_reevaluation(
    session_factory: async_sessionmaker[AsyncSession],
    job_id: uuid.UUID,
    ruleset_id: str,
    *,
    batch_size: int | None = None,
    as_of: date | None = None,
    workers: int | None = None,
    resume: bool = False,
) -> None:
    """Run the job to the end. Reads, evaluation (optionally in ``workers`` processes) and writes are
    pipelined: batch k is written (one write in flight, in order) while batch k+1 is read and evaluated.
    Progress is recorded after every batch. ``resume``: the job was interrupted (its process died); it goes on
    after its last committed batch (:func:`committed_progress`), evaluating no enterprise twice."""
    cfg = get_config()
    size = batch_size or cfg.reevaluate_batch
    nworkers = cfg.reevaluate_workers if workers is None else workers
    pool: ProcessPoolExecutor | None = None
    frozen = False
    try:
        async with session_factory() as session, session.begin():
            stored = await latest_rulesets(session)
            rs = next((r for _, r in stored if str(r.id) == ruleset_id), None)
            if rs is None:
                raise LookupError(f"规则集 {ruleset_id} 不存在")
            # enterprises with a report, per region (a semi-join: a join counted DISTINCT sorted 100,000 keys)
            regions = (
                await session.execute(
                    select(Enterprise.region_code, func.count())
                    .where(Enterprise.status != "deregistered",
                           exists().where(IndicatorReport.uscc == Enterprise.uscc))
                    .group_by(Enterprise.region_code)
                )
            ).all()
            total = sum(n for region, n in regions if rs.covers_region(region))
            template_id = (await store_templates(session, [rs]))[str(rs.id)]
            after, done = await committed_progress(session, job_id) if resume else ("", 0)
            await session.execute(
                update(Job).where(Job.id == job_id).values(
                    status="running", total=total, done=done,
                    started_at=func.coalesce(Job.started_at, datetime.now(UTC)) if resume else datetime.now(UTC),
                )
            )
        when = clip_as_of(rs, as_of or cfg.decision_date())
        sink = _Sink(template_id, str(job_id), when)
        loop = asyncio.get_running_loop()
        definition = rs.model_dump(mode="json")
        ruleset = (hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest(), definition)
        if nworkers > 0:
            pool = worker_pool(nworkers)
        else:
            _init_worker(definition)
        # The objects alive now (modules, compiled rule sets, ORM and driver state) are moved out of the cyclic
        # collector's generations for the job: its full collections otherwise walk them again and again
        # while the job, the relay and consumers allocate (≈ a tenth of the job's time). Reference counting
        # is unaffected; the collector takes them back when the job ends (and a service that froze its
        # start-up objects, ``Settings.gc_freeze``, freezes what survives again: unfreezing took those too).
        gc.freeze()
        frozen = True
        writing: asyncio.Task[None] | None = None
        # with worker processes, batch k is evaluated while batch k+1 is read and batch k-1 written
        evaluating: deque[asyncio.Future[list[tuple[int, bytes, bytes]]]] = deque()

        async def write(parts: list[tuple[int, bytes, bytes]]) -> None:
            nonlocal done, writing
            if writing is not None:
                await writing
            done += sum(n for n, _, _ in parts)
            writing = asyncio.create_task(_write(session_factory, parts, job_id, done))

        while True:
            async with session_factory() as session:
                # a small first batch: its results reach the database, the relay and the consumers while the
                # next batches are evaluated, instead of everything downstream waiting for a whole batch
                rows = await _batch(session, after, size if after else max(1, size // 8))
                inputs = []
                if rows:
                    after = rows[-1][0]
                    inputs = await _inputs(session, rs, rows)
            if pool is not None:
                # queue batch k+1 on the workers before waiting for batch k and its write, so the workers
                # never idle while this process writes
                if inputs:
                    step = -(-len(inputs) // nworkers)
                    texts = sink.texts()
                    chunks = [loop.run_in_executor(pool, _eval_chunk, inputs[i:i + step], when, ruleset, texts)
                              for i in range(0, len(inputs), step)]
                    evaluating.append(asyncio.ensure_future(_joined(chunks)))
                while evaluating and (len(evaluating) > 1 or not rows):
                    await write(await evaluating.popleft())
                if not rows:
                    break
                continue
            if not rows:
                break
            # Evaluate in slices, yielding to the event loop between them: the COPY of the previous batch
            # (PostgreSQL, on another core), the outbox relay and consumers progress meanwhile.
            parts: list[tuple[int, bytes, bytes]] = []
            texts = sink.texts()
            for i in range(0, len(inputs), _SLICE):
                parts.append(_eval_chunk(inputs[i:i + _SLICE], when, None, texts))
                await asyncio.sleep(0)
            await write(parts)
        if writing is not None:
            await writing
        async with session_factory() as session, session.begin():
            await session.execute(
                update(Job).where(Job.id == job_id).values(status="done", done=done, finished_at=datetime.now(UTC))
            )
    except Exception as exc:  # recorded on the job; the API shows it
        log.exception("re-evaluation job failed")
        if isinstance(exc, BrokenProcessPool) and pool is not None:
            _POOL.drop(pool)
        async with session_factory() as session, session.begin():
            await session.execute(
                update(Job).where(Job.id == job_id).values(
                    status="failed", error=f"{type(exc).__name__}: {exc}", finished_at=datetime.now(UTC)
                )
            )
    finally:
        if frozen:
            gc.unfreeze()
            if get_settings(backbone.service).gc_freeze:
                freeze_survivors()


async def _joined(chunks: list[asyncio.Future[tuple[int, bytes, bytes]]]) -> list[tuple[int, bytes, bytes]]:
    return list(await asyncio.gather(*chunks))


async def resume_interrupted(engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession]) -> int:
    """At service start: resume every re-evaluation job left queued or running by a process that died (nobody
    holds its rule set's job lock, which a live job keeps on its own connection), each holding the lock like a
    job the API started. Returns how many were resumed."""
    async with session_factory() as session:
        jobs = list((await session.execute(
            select(Job.id, Job.ruleset_id)
            .where(Job.kind == "reevaluate", Job.status.in_(("queued", "running")))
            .order_by(Job.created_at)
        )).all())
    resumed = 0
    for job_id, ruleset_id in jobs:
        if ruleset_id is None:
            continue
        key = evaluations_db.job_lock_key("reevaluate", ruleset_id)
        lease = await engine.connect()
        try:
            if not await evaluations_db.try_lock(lease, key):
                continue  # alive in another process
            async with session_factory() as session, session.begin():
                job = await session.get(Job, job_id, with_for_update=True)
                if job is None or job.status not in ("queued", "running"):
                    continue  # finished or superseded meanwhile
                await record_audit(session, backbone, None, "job.resumed", "job", str(job_id),
                                   before={"status": job.status, "done": job.done})
            log.info("resuming interrupted re-evaluation job %s (%s)", job_id, ruleset_id)
            await start_reevaluation(session_factory, job_id, ruleset_id, resume=True)
            resumed += 1
        finally:
            try:
                await evaluations_db.unlock(lease, key)
            except Exception:  # a broken connection: PostgreSQL released its locks with the session
                await lease.invalidate()
            finally:
                await lease.close()
    return resumed


_WORKER_RS: Any = None
_WORKER_KEY = ""
_SLICE = 50  # enterprises evaluated between two yields to the event loop (keeps the COPY to PostgreSQL fed)


def _import_engine() -> None:
    import services.evaluation.domain.engine  # noqa: F401


# The worker processes, kept for later jobs (the service starts them at start-up, so a job does not wait the
# second or so a process takes to start and import the engine).
_POOL = KeptPool(initializer=_import_engine)


def worker_pool(n: int) -> ProcessPoolExecutor:
    """The re-evaluation worker processes (``n`` of them; a different ``n`` replaces the pool)."""
    return _POOL.get(n)


async def prestart_workers(n: int | None = None) -> None:
    """Start the worker processes now and wait until each has imported the engine."""
    n = get_config().reevaluate_workers if n is None else n
    if n > 0:
        pool = worker_pool(n)
        loop = asyncio.get_running_loop()
        await asyncio.gather(*[loop.run_in_executor(pool, _import_engine) for _ in range(n)])


def shutdown_workers() -> None:
    """Stop the worker processes (they are also stopped at interpreter exit)."""
    _POOL.shutdown()


def _init_worker(definition: dict[str, Any], key: str = "") -> None:
    """Validate and compile the job's rule set in this process (once per rule set content)."""
    global _WORKER_RS, _WORKER_KEY
    from services.evaluation.domain.engine import compile_ruleset
    from services.evaluation.domain.rules import RuleSet

    _WORKER_RS = RuleSet.model_validate(definition)
    _WORKER_KEY = key
    compile_ruleset(_WORKER_RS)


class _Sink:
    """What the job's rows carry besides the evaluation: explanation template, job id, decision date."""

    def __init__(self, template_id: str, job_id: str, as_of: date) -> None:
        self.template_id, self.job_id, self.as_of = template_id, job_id, as_of

    def texts(self) -> tuple[_EventTexts, str, str, str]:
        """For one batch: its events' encoder (stamped now) and the constant columns, COPY-escaped."""
        return (_EventTexts(datetime.now(UTC).isoformat(), self.as_of), copy_text(self.template_id), self.job_id,
                self.as_of.isoformat())


def _eval_chunk(
    chunk: list[tuple[Any, ...]], as_of: date, ruleset: tuple[str, dict[str, Any]] | None,
    texts: tuple[_EventTexts, str, str, str],
) -> tuple[int, bytes, bytes]:
    """Evaluate a chunk and write its rows: (count, the ``evaluations`` rows, their outbox rows), both in
    PostgreSQL's COPY text format, ready for the job's transaction. Runs in a worker process (or the job's):
    the job process only passes the bytes on, and a chunk crosses between processes as two byte strings."""
    event, template, job_id, as_of_text = texts
    results = _evaluate(chunk, as_of, ruleset)
    rs = _WORKER_RS  # the chunk's rule set: its columns are the same on every row
    mid = (f"\t{copy_text(str(rs.id))}\t{copy_text(str(rs.version))}\t{copy_text(str(rs.tier))}"
           f"\t{copy_text(str(rs.level))}\t{as_of_text}\t")
    tail, end = f"\t{template}\t", f"\treevaluation\t{job_id}\n"
    evals: list[str] = []
    events: list[str] = []
    for uscc, region, year, summary, score, explanation, unmet, gaps in results:
        u, r = copy_text(uscc), COPY_NULL if region is None else copy_text(region)
        flag_points = f"{'t' if summary['eligible'] else 'f'}\t{COPY_NULL if score is None else score}"
        evals.append(f"{uuid7_str()}\t{u}\t{r}\t{year}{mid}{flag_points}{tail}{copy_json(explanation)}{end}")
        events.append(event.line(uscc, region, year, summary, unmet, gaps))
    return len(evals), "".join(evals).encode(), "".join(events).encode()


def _evaluate(
    chunk: list[tuple[Any, ...]], as_of: date, ruleset: tuple[str, dict[str, Any]] | None = None
) -> list[tuple[Any, ...]]:
    """Evaluate plain tuples, return plain tuples (uscc, region, year, summary, score, compact explanation, unmet
    count, gap texts). Runs in the job process or a worker process.

    Uses the engine's explanation mode (``domain.engine.encode_with_gaps``: the varying part of the explanation,
    written without building pydantic models — the static part is the rule set's template — with the unmet
    count and the gaps the same walk wrote).
    The cyclic garbage collector is paused for the chunk: the evaluation allocates many short-lived
    containers and creates no reference cycles, and the collector's passes over the live batch otherwise
    cost more than the evaluation itself."""
    from services.evaluation.domain.engine import encode_with_gaps
    from services.evaluation.domain.facts import stored_facts

    if ruleset is not None and ruleset[0] != _WORKER_KEY:  # a worker process meets the job's rule set
        _init_worker(ruleset[1], ruleset[0])
    rs = _WORKER_RS
    rid, tier, level = str(rs.id), str(rs.tier), str(rs.level)
    out: list[tuple[Any, ...]] = []
    with collector_paused():
        for row in chunk:
            text, eligible, score, unmet, gaps = encode_with_gaps(rs, stored_facts(row), as_of)
            score2 = None if score is None else score.quantize(_Q2)
            summary = {"ruleset_id": rid, "tier": tier, "eligible": eligible,
                       "score": None if score2 is None else str(score2), "level": level}
            out.append((row[0], row[1], row[2], summary, score2, text, unmet, gaps))
    return out


_Q2 = Decimal("0.01")
