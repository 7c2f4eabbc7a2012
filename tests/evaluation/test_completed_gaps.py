"""``evaluation.completed`` carries per result the title level, the number of unmet conditions and, when not
eligible and few conditions are unmet, the gaps (notification's gap advice and the monitor's forecast read them),
on the single path (``evaluate_and_store``) and the re-evaluation job's hand-written JSON alike."""

from __future__ import annotations

import json
import random
import uuid
from datetime import date
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.evaluation.app.evaluating import build_facts, evaluate_and_store, event_gaps
from services.evaluation.app.reevaluation import start_reevaluation
from services.evaluation.db.models import Enterprise, IndicatorReport, Job
from services.evaluation.db.ruleset_store import sync_rulesets
from services.evaluation.domain.engine import encode, encode_with_gaps
from services.evaluation.domain.loader import load_all
from services.evaluation.events.contracts import EVALUATION_COMPLETED, EvaluationCompleted
from shared.indicators import IndicatorSet
from tests.evaluation.conftest import new_uscc

AS_OF = date(2026, 6, 30)
# an 余杭 enterprise that meets the district's 专精特新 conditions except R&D: 2% of ¥60,000,000 where 3% is
# required, i.e. ¥600,000 short
NEAR_SRDI: dict[str, Any] = {
    "operating_revenue": "60000000", "operating_revenue_prev1": "55000000", "rd_expense": "1200000",
    "rd_expense_prev1": "1500000", "tax_paid": "2400000", "six_foundations": True, "niche_years": "8",
    "ip_class1": 3, "ip_class2": 5, "employees": 120, "abnormal_operation": False, "serious_dishonesty": False,
    "major_accident_3y": False,
}
RD_GAP = {"code": "rd_ratio", "metric": "rd_ratio", "unit": "ratio", "current": "2%", "required": "≥ 3%",
          "shortfall": "0.01", "yuan_needed": "600000.00"}


def test_the_walk_gives_the_unmet_count_and_gaps_of_its_compact_form() -> None:
    """The unmet count and gap texts ``encode_with_gaps`` hands over are those of the compact explanation it
    wrote (its last two parts), for every shipped rule set over demo-like enterprises: the event's summary needs
    no second read of the explanation."""
    from services.registry.demo import demo_indicators, generate_enterprises  # test data only

    rng = random.Random(7)
    facts = [build_facts(demo_indicators(e, 2025, rng), [], region_code=e.data.region_code, reporting_year=2025,
                         founded_on=e.data.founded_on) for e in generate_enterprises(60)]
    checked = with_gaps = 0
    for rs in load_all():
        for f in facts:
            compact, eligible, score, unmet, gaps = encode_with_gaps(rs, f, AS_OF)
            assert (compact, eligible, score) == encode(rs, f, AS_OF)
            want_unmet, want_gaps = json.loads(compact)[-2:]
            assert unmet == len(want_unmet)
            assert [json.loads(g) for g in gaps] == want_gaps
            checked += 1
            with_gaps += bool(gaps)
    assert checked > 500 and with_gaps > 100


async def _near_enterprise(sf: async_sessionmaker[AsyncSession]) -> str:
    await sync_rulesets(sf)  # the shipped rule sets beside the test ones
    uscc = new_uscc("330110")
    async with sf() as s, s.begin():
        s.add(Enterprise(uscc=uscc, name="杭州余杭差一点科技有限公司", region_code="330110", status="active",
                         founded_on=date(2015, 3, 1), version=1))
        s.add(IndicatorReport(uscc=uscc, year=2025, revision=1, region_code="330110", indicators=NEAR_SRDI))
    return uscc


def _result(payload: dict[str, Any], ruleset_id: str) -> dict[str, Any]:
    found = [r for r in payload["results"] if r["ruleset_id"] == ruleset_id]
    assert len(found) == 1, payload
    return found[0]


async def test_completed_event_names_the_yuan_gap_of_a_near_enterprise(
    sf: async_sessionmaker[AsyncSession],
) -> None:
    uscc = await _near_enterprise(sf)
    async with sf() as s, s.begin():
        await evaluate_and_store(s, uscc, 2025, AS_OF, ruleset_ids={"YH-2022-district-srdi", "MIIT-2026-2-srdi"})
    async with sf() as s:
        rows = (await s.execute(text("SELECT payload::text FROM evaluation.outbox WHERE type = :t"),
                                {"t": EVALUATION_COMPLETED})).scalars().all()
    assert len(rows) == 1
    payload = json.loads(rows[0])
    near = _result(payload, "YH-2022-district-srdi")
    assert (near["tier"], near["level"], near["eligible"], near["unmet"]) == ("srdi", "county", False, 1)
    assert len(near["gaps"]) == 1
    gap = near["gaps"][0]
    assert {k: gap[k] for k in RD_GAP} == RD_GAP
    assert "60万元" in gap["description"]
    far = _result(payload, "MIIT-2026-2-srdi")  # many conditions unmet: the count, no gaps (a small event)
    assert far["level"] == "province" and far["unmet"] > 3 and far["gaps"] is None


async def test_reevaluation_job_writes_the_same_gaps_as_contract_json(
    sf: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    uscc = await _near_enterprise(sf)
    job_id = uuid.uuid4()
    async with sf() as s, s.begin():
        s.add(Job(id=job_id, kind="reevaluate", ruleset_id="YH-2022-district-srdi", status="queued",
                  requested_by="test"))
    await start_reevaluation(sf, job_id, "YH-2022-district-srdi", as_of=AS_OF, batch_size=10, workers=0)
    monkeypatch.setenv("ZJTX_EVAL_GAP_EVENT_MAX_UNMET", "0")  # the bound is configured: no gaps at all
    job2 = uuid.uuid4()
    async with sf() as s, s.begin():
        s.add(Job(id=job2, kind="reevaluate", ruleset_id="YH-2022-district-srdi", status="queued",
                  requested_by="test"))
    await start_reevaluation(sf, job2, "YH-2022-district-srdi", as_of=AS_OF, batch_size=10, workers=0)
    async with sf() as s:
        texts = (await s.execute(text("SELECT payload::text FROM evaluation.outbox WHERE type = :t AND key = :k "
                                      "ORDER BY seq"), {"t": EVALUATION_COMPLETED, "k": uscc})).scalars().all()
    assert len(texts) == 2
    for payload in texts:
        assert payload == EvaluationCompleted.model_validate_json(payload).model_dump_json()
    first, second = (json.loads(t)["results"][0] for t in texts)
    assert (first["level"], first["unmet"]) == ("county", 1)
    assert {k: first["gaps"][0][k] for k in RD_GAP} == RD_GAP
    assert second["unmet"] == 1 and second["gaps"] is None


def test_unmet_and_gaps_only_when_not_eligible_and_near() -> None:
    rs = next(r for r in load_all() if str(r.id) == "YH-2022-district-srdi")
    facts = build_facts(IndicatorSet.model_validate(NEAR_SRDI), [], region_code="330110", reporting_year=2025,
                        founded_on=date(2015, 3, 1))
    _, eligible, _, unmet, gaps = encode_with_gaps(rs, facts, AS_OF)
    assert not eligible and unmet == 1
    assert event_gaps(eligible, unmet, gaps, 3) == gaps and len(gaps) == 1
    assert event_gaps(eligible, unmet, gaps, 0) is None
    ok = build_facts(IndicatorSet.model_validate({**NEAR_SRDI, "rd_expense": "1800000"}), [], region_code="330110",
                     reporting_year=2025, founded_on=date(2015, 3, 1))
    _, eligible, _, unmet, gaps = encode_with_gaps(rs, ok, AS_OF)
    assert eligible and unmet == 0 and event_gaps(eligible, unmet, gaps, 3) is None
