"""The set-based handler of ``indicators.reported`` (``on_indicators_many``, used by the consumer for a run of them,
e.g. a demo load or a reporting deadline) leaves the same state and writes the same ``evaluation.completed``
events as the per-event handler: a known enterprise, an unknown one (created from the report's profile), a
deregistered one (ignored), a newer and a stale revision, two years of one enterprise, a held title and a credit
listing; each event's evaluation carries the correlation id of the report that caused it."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.evaluation.db.models import CreditListing, Enterprise, Evaluation, IndicatorReport
from services.evaluation.events.contracts import INDICATORS
from services.evaluation.events.handlers import on_indicators, on_indicators_many
from shared.context import correlation_id_var, event_id_var
from shared.events.envelope import CloudEvent
from tests.evaluation.conftest import add_enterprise, add_title, new_uscc

YEAR = date.today().year - 1
GOOD = {"operating_revenue": "60000000", "operating_revenue_prev1": "50000000", "rd_expense": "3000000",
        "employees": 80}
WEAK = {"operating_revenue": "8000000", "rd_expense": "100000"}


def _event(uscc: str, year: int, revision: int, indicators: dict[str, Any], **extra: Any) -> CloudEvent:
    data = {"uscc": uscc, "region_code": "330110", "year": year, "revision": revision,
            "reported_at": "2026-03-01T08:00:00+08:00", "indicators": indicators, **extra}
    eid = str(uuid.uuid4())
    return CloudEvent(id=eid, source="/zjtx/registry", type=INDICATORS, subject=uscc, regioncode="330110",
                      time=datetime.now(UTC), correlationid=f"corr-{eid}", data=data)


async def _enterprises(sf: async_sessionmaker[AsyncSession]) -> list[str]:
    """known, with a title, listed, deregistered (each with a report of ``YEAR`` - 2), and one left unknown."""
    known = await add_enterprise(sf, year=YEAR - 2)
    titled = await add_enterprise(sf, year=YEAR - 2)
    await add_title(sf, titled, "innovative", date(YEAR - 1, 5, 1), date(YEAR + 2, 4, 30), level="province")
    listed = await add_enterprise(sf, year=YEAR - 2)
    gone = await add_enterprise(sf, year=YEAR - 2)
    async with sf() as s, s.begin():
        s.add(CreditListing(uscc=listed, listing="abnormal_operation", agency="市场监管局",
                            listed_on=date(YEAR, 1, 1), reason="测试"))
        (await s.get(Enterprise, gone)).status = "deregistered"  # type: ignore[union-attr]
    return [known, titled, listed, gone, new_uscc()]


def _story(known: str, titled: str, listed: str, gone: str, unknown: str) -> list[CloudEvent]:
    profile = {"name": "新企业", "founded_on": "2015-03-01", "industry_code": "3562", "is_manufacturing": True,
               "scale": "small"}
    return [
        _event(known, YEAR, 1, WEAK, enterprise={"name": "改名企业"}),
        _event(unknown, YEAR, 1, GOOD, enterprise=profile),
        _event(titled, YEAR, 1, GOOD),
        _event(known, YEAR, 3, GOOD),  # a newer revision: evaluated again
        _event(listed, YEAR, 1, GOOD),
        _event(gone, YEAR, 1, GOOD),  # deregistered: ignored
        _event(known, YEAR, 2, WEAK),  # stale: ignored
        _event(known, YEAR - 1, 1, GOOD),
    ]


async def _state(sf: async_sessionmaker[AsyncSession], usccs: list[str], causes: dict[str, int]) -> dict[str, Any]:
    """Everything the handler writes for ``usccs``, with each uscc named by its position (and each correlation id
    by the position of its event in the story)."""
    pos = {u: i for i, u in enumerate(usccs)}
    async with sf() as s:
        ents = sorted((pos[e.uscc], e.name, e.founded_on, e.industry_code, e.is_manufacturing, e.scale, e.status,
                       e.region_code, e.version)
                      for e in (await s.execute(select(Enterprise).where(Enterprise.uscc.in_(usccs)))).scalars())
        reports = sorted((pos[r.uscc], r.year, r.revision, json.dumps(r.indicators, sort_keys=True))
                         for r in (await s.execute(select(IndicatorReport).where(
                             IndicatorReport.uscc.in_(usccs)))).scalars())
        evaluations = sorted((pos[e.uscc], e.year, e.ruleset_id, e.ruleset_version, e.tier, e.level, e.eligible,
                              str(e.score), e.explanation_template, e.explanation_values, e.trigger, e.as_of)
                             for e in (await s.execute(select(Evaluation).where(
                                 Evaluation.uscc.in_(usccs)))).scalars())
        events: dict[int, list[tuple[Any, ...]]] = {}
        for key, headers, payload in (await s.execute(text(
                "SELECT key, headers, payload::text FROM evaluation.outbox WHERE key = ANY(:k) ORDER BY seq"),
                {"k": usccs})).all():
            body = json.loads(payload)
            body["uscc"] = pos[body["uscc"]]
            events.setdefault(pos[key], []).append(
                (headers["ce_type"], headers.get("ce_regioncode"), causes[headers["ce_correlationid"]], body))
    return {"enterprises": ents, "reports": reports, "evaluations": evaluations, "events": events}


async def test_batch_equals_one_by_one(sf: async_sessionmaker[AsyncSession]) -> None:
    one, many = await _enterprises(sf), await _enterprises(sf)
    story_one, story_many = _story(*one), _story(*many)
    async with sf() as s, s.begin():
        for e in story_one:  # in the consumer's context of each event (shared.events.consumer)
            tokens = event_id_var.set(e.id), correlation_id_var.set(e.correlationid)
            try:
                await on_indicators(s, e)
            finally:
                correlation_id_var.reset(tokens[1])
                event_id_var.reset(tokens[0])
    async with sf() as s, s.begin():
        await on_indicators_many(s, story_many)
    got_one = await _state(sf, one, {e.correlationid: i for i, e in enumerate(story_one)})
    got_many = await _state(sf, many, {e.correlationid: i for i, e in enumerate(story_many)})
    assert got_many == got_one
    # the story did what it says: the unknown enterprise was created from the profile, the deregistered one got no
    # evaluation, the known one was evaluated for revisions 1 and 3 of YEAR and for YEAR - 1 (not for the stale 2)
    assert [e[:2] for e in got_one["enterprises"] if e[0] == 4] == [(4, "新企业")]
    assert got_one["enterprises"][0][1] == "改名企业"
    assert 3 not in got_one["events"]
    assert [c for _, _, c, _ in got_one["events"][0]] == [0, 3, 7]
    assert {e[1] for e in got_one["evaluations"] if e[0] == 0} == {YEAR, YEAR - 1}
    assert [r[2] for r in got_one["reports"] if r[:2] == (0, YEAR)] == [3]
