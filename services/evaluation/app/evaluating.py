"""Evaluate enterprises under the rule sets in force, store the explained results and publish them."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import ARRAY, Text, any_, bindparam, select
from sqlalchemy.dialects.postgresql import array
from sqlalchemy.ext.asyncio import AsyncSession

from services.evaluation.config import get_config
from services.evaluation.db.enterprise_reads import latest_evaluations_json
from services.evaluation.db.models import Enterprise, Evaluation, IndicatorReport, Recognition, backbone
from services.evaluation.db.ruleset_store import latest_rulesets
from services.evaluation.events.contracts import (
    EVALUATION_COMPLETED,
    EvaluationCompleted,
    GapSummary,
    ResultSummary,
)
from shared.auth import Principal
from shared.context import correlation_id_var, event_id_var
from shared.db_reads import ReadPool, scope_of
from shared.events.envelope import dumps
from shared.events.outbox import emit_many, outbox_row
from shared.indicators import IndicatorSet
from shared.problems import not_found

COMPLETED = EVALUATION_COMPLETED


def jsonable(obj: Any) -> Any:
    """Any engine result (pydantic model, dataclass, plain values) as JSON-compatible data."""
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = dataclasses.asdict(obj)
    return json.loads(dumps(obj))


_Q2 = Decimal("0.01")


def gap_summary(text: str) -> dict[str, str | None]:
    """A gap's compact text (``domain.explanation.gap``, as the walk wrote it) as ``GapSummary`` fields (yuan as
    2 decimals)."""
    code, description, metric, unit, current, required, shortfall, _display, yuan = orjson.loads(text)
    return {"code": code, "description": description, "metric": metric, "unit": unit, "current": current,
            "required": required, "shortfall": shortfall,
            "yuan_needed": None if yuan is None else str(Decimal(yuan).quantize(_Q2))}


def event_gaps(eligible: bool, unmet: int, gaps: list[str], max_unmet: int) -> list[str] | None:
    """The gaps ``evaluation.completed`` carries (their compact texts): when not eligible and at most
    ``max_unmet`` conditions are unmet (``EvaluationConfig.gap_event_max_unmet``), else none."""
    return None if eligible or unmet > max_unmet else gaps


def held_titles(recognitions: list[Recognition]) -> list[Any]:
    from services.evaluation.domain.facts import HeldTitle

    return [
        HeldTitle(
            tier=r.tier,
            level=r.level,
            valid_from=r.valid_from,
            valid_to=r.valid_to,
            revoked=r.status == "revoked",
        )
        for r in recognitions
    ]


def build_facts(
    indicators: IndicatorSet,
    titles: list[Any],
    *,
    region_code: str,
    reporting_year: int,
    founded_on: date | None = None,
    industry_code: str | None = None,
    is_manufacturing: bool | None = None,
    is_recheck: bool = False,
) -> Any:
    from services.evaluation.domain.facts import EnterpriseFacts

    return EnterpriseFacts(
        indicators=indicators,
        titles=titles,
        founded_on=founded_on,
        region_code=region_code,
        industry_code=industry_code,
        is_manufacturing=is_manufacturing,
        reporting_year=reporting_year,
        is_recheck=is_recheck,
    )


def select_in_force(rulesets: list[Any], as_of: date, region_code: str, tier: str | None = None) -> list[Any]:
    from services.evaluation.domain.selection import in_force

    return list(in_force(rulesets, as_of, region_code, tier))


def run_engine(ruleset: Any, facts: Any, as_of: date) -> Any:
    from services.evaluation.domain.engine import evaluate

    return evaluate(ruleset, facts, as_of)


async def titles_of(session: AsyncSession, uscc: str) -> list[Any]:
    rows = (await session.execute(select(Recognition).where(Recognition.uscc == uscc))).scalars().all()
    return held_titles(list(rows))


def any_text(values: list[str]) -> Any:
    """``= ANY(:values)`` with one text-array parameter (``IN`` renders a parameter per value at every execution)."""
    return any_(bindparam("values", values, type_=ARRAY(Text), unique=True))


@dataclasses.dataclass(frozen=True)
class Subject:
    """An enterprise's indicators of a year to evaluate; ``cause`` (event id, correlation id): the consumed event
    its ``evaluation.completed`` follows (a batch handler names it per subject, as the consumer does per event)."""

    uscc: str
    year: int
    cause: tuple[str, str] | None = None


@contextmanager
def _caused_by(cause: tuple[str, str] | None) -> Iterator[None]:
    if cause is None:
        yield
        return
    tokens = event_id_var.set(cause[0]), correlation_id_var.set(cause[1])
    try:
        yield
    finally:
        correlation_id_var.reset(tokens[1])
        event_id_var.reset(tokens[0])


async def evaluate_and_store(
    session: AsyncSession,
    uscc: str,
    year: int,
    as_of: date,
    *,
    trigger: str = "indicators",
    job_id: uuid.UUID | None = None,
    ruleset_ids: set[str] | None = None,
) -> list[Evaluation]:
    """Evaluate ``uscc``'s indicators of ``year`` under every rule set in force covering its region."""
    return await evaluate_and_store_many(session, [Subject(uscc, year)], as_of, trigger=trigger, job_id=job_id,
                                         ruleset_ids=ruleset_ids)


async def evaluate_and_store_many(
    session: AsyncSession,
    subjects: Sequence[Subject],
    as_of: date,
    *,
    trigger: str = "indicators",
    job_id: uuid.UUID | None = None,
    ruleset_ids: set[str] | None = None,
) -> list[Evaluation]:
    """:func:`evaluate_and_store` for several (enterprise, year), with one read per table for them all (a run of
    ``indicators.reported`` events); each enterprise at most once. Subjects without a report of the year or of a
    deregistered enterprise are skipped."""
    if not subjects:
        return []
    await session.flush()  # the caller's changes (the reads below load what the database holds)
    usccs = list(dict.fromkeys(s.uscc for s in subjects))
    wanted = {(s.uscc, s.year) for s in subjects}
    ents = {e.uscc: e for e in (await session.execute(
        select(Enterprise).where(Enterprise.uscc == any_text(usccs))
        .execution_options(populate_existing=True))).scalars()}
    reports = {(r.uscc, r.year): r for r in (await session.execute(
        select(IndicatorReport).where(IndicatorReport.uscc == any_text(usccs),
                                      IndicatorReport.year == any_(array(sorted({y for _, y in wanted}))))
        .execution_options(populate_existing=True))).scalars() if (r.uscc, r.year) in wanted}
    todo = [s for s in subjects if (s.uscc, s.year) in reports
            and not (s.uscc in ents and ents[s.uscc].status == "deregistered")]
    if not todo:
        return []
    from services.evaluation.app.credit import credit_indicators_many  # (credit imports this module)

    # the agencies' credit listings
    indicators = await credit_indicators_many(
        session, {s.uscc: IndicatorSet.model_validate(reports[(s.uscc, s.year)].indicators) for s in todo}, as_of)
    recognitions: dict[str, list[Recognition]] = {}
    for r in (await session.execute(select(Recognition).where(
            Recognition.uscc == any_text([s.uscc for s in todo])))).scalars():
        recognitions.setdefault(r.uscc, []).append(r)
    stored = await latest_rulesets(session)
    rulesets = [rs for _, rs in stored]
    chosen_of: dict[str, list[Any]] = {}
    regions: dict[str, str] = {}
    for s in todo:
        ent = ents.get(s.uscc)
        region = regions[s.uscc] = ent.region_code if ent is not None else reports[(s.uscc, s.year)].region_code
        if region not in chosen_of:
            chosen = select_in_force(rulesets, as_of, region)
            if ruleset_ids is not None:
                chosen = [rs for rs in chosen if str(rs.id) in ruleset_ids]
            chosen_of[region] = chosen
    from services.evaluation.db.explanations import store_templates
    from services.evaluation.domain.engine import encode_with_gaps

    templates = await store_templates(session, list({str(rs.id): rs for c in chosen_of.values() for rs in c}.values()))
    max_unmet = get_config().gap_event_max_unmet
    rows: list[Evaluation] = []
    events: list[dict[str, Any]] = []
    for s in todo:
        ent = ents.get(s.uscc)
        region = regions[s.uscc]
        facts = build_facts(
            indicators[s.uscc],
            held_titles(recognitions.get(s.uscc, [])),
            region_code=region,
            reporting_year=s.year,
            founded_on=ent.founded_on if ent else None,
            industry_code=ent.industry_code if ent else None,
            is_manufacturing=ent.is_manufacturing if ent else None,
        )
        summaries: list[ResultSummary] = []
        for rs in chosen_of[region]:
            # one walk of the rule set: the decision, the score and the explanation, stored normalised (its varying
            # part, the compact form, + the rule-set version's template)
            compact, eligible, raw_score, unmet, gap_texts = encode_with_gaps(rs, facts, as_of)
            score = None if raw_score is None else raw_score.quantize(Decimal("0.01"))
            row = Evaluation(
                id=uuid.uuid4(),
                uscc=s.uscc,
                region_code=region,
                year=s.year,
                ruleset_id=str(rs.id),
                ruleset_version=str(rs.version),
                tier=str(rs.tier),
                level=str(rs.level),
                as_of=as_of,
                eligible=eligible,
                score=score,
                explanation_template=templates[str(rs.id)],
                explanation_values=compact,
                trigger=trigger,
                job_id=job_id,
            )
            session.add(row)
            rows.append(row)
            gaps = event_gaps(eligible, unmet, gap_texts, max_unmet)
            summaries.append(ResultSummary(
                ruleset_id=str(rs.id), tier=str(rs.tier), eligible=eligible,
                score=None if score is None else str(score), level=str(rs.level), unmet=unmet,
                gaps=None if gaps is None else [GapSummary(**gap_summary(g)) for g in gaps],
            ))
        with _caused_by(s.cause):
            events.append(outbox_row(
                backbone, COMPLETED, s.uscc,
                EvaluationCompleted(uscc=s.uscc, region_code=region, year=s.year, as_of=as_of, results=summaries),
                regioncode=region,
            ))
    await session.flush()
    await emit_many(session, backbone, events)
    return rows


def evaluation_view(row: Evaluation, with_explanation: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(row.id),
        "uscc": row.uscc,
        "region_code": row.region_code,
        "year": row.year,
        "ruleset_id": row.ruleset_id,
        "ruleset_version": row.ruleset_version,
        "tier": row.tier,
        "level": row.level,
        "as_of": row.as_of.isoformat(),
        "eligible": row.eligible,
        "score": None if row.score is None else f"{row.score:.2f}",
        "created_at": row.created_at.isoformat() if row.created_at else None,
    }
    if with_explanation:
        out["explanation"] = row.explanation
    return out


async def latest_of_enterprise(
    session: AsyncSession, principal: Principal, uscc: str, year: int | None
) -> list[dict[str, Any]]:
    """The enterprise's latest evaluation per (tier, rule set), explained; per tier only the rule sets of its
    newest evaluation run. Through the session: the reference the route's
    :func:`latest_of_enterprise_json` is held equal to (tests/evaluation/test_hot_reads.py)."""
    from services.evaluation.app.access import visible_enterprise
    from services.evaluation.db.evaluations import recent_of

    await visible_enterprise(session, principal, uscc)
    seen: set[tuple[str, str]] = set()
    latest: dict[str, list[Evaluation]] = {}
    for r in await recent_of(session, uscc, year):
        if (r.tier, r.ruleset_id) in seen:
            continue
        seen.add((r.tier, r.ruleset_id))
        latest.setdefault(r.tier, []).append(r)
    items: list[dict[str, Any]] = []
    for _tier, group in sorted(latest.items()):
        newest = max(g.created_at for g in group)
        items.extend(evaluation_view(g) for g in group if g.created_at == newest)
    return items


async def latest_of_enterprise_json(pool: ReadPool, principal: Principal, uscc: str, year: int | None) -> str:
    """EnterpriseEvaluations' JSON (as :func:`latest_of_enterprise`), written by PostgreSQL without a session."""
    body = await latest_evaluations_json(pool, scope_of(principal), uscc, year)
    if body is None:
        raise not_found("企业")
    return body
