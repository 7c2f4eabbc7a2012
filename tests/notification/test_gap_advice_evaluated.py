"""Gap advice from the ``evaluation.completed`` event evaluation itself writes: the payload is built by the
evaluation service's producer (its engine, ``app.evaluating.event_gaps``/``gap_summary`` and the contract model), not
written by hand, so a renamed field on either side fails here. An enterprise ¥600,000 short of the R&D
condition of 余杭's 专精特新 gets the advice once (the event delivered twice)."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.evaluation.app.evaluating import build_facts, event_gaps, gap_summary
from services.evaluation.domain.engine import encode_with_gaps
from services.evaluation.domain.loader import load_all
from services.evaluation.events.contracts import EvaluationCompleted, GapSummary, ResultSummary
from services.notification.fake_providers import Mailbox
from shared.indicators import IndicatorSet
from tests.evaluation.test_completed_gaps import NEAR_SRDI
from tests.harness import auth, wait_for
from tests.notification.conftest import event, registered, uscc
from tests.notification.test_flow import produce, settled, stack  # noqa: F401 (fixture)

AS_OF = date(2026, 6, 30)


def evaluated(u: str) -> Any:
    """``evaluation.completed`` as evaluation publishes it for ``u`` under the rule sets covering 余杭."""
    facts = build_facts(IndicatorSet.model_validate(NEAR_SRDI), [], region_code="330110", reporting_year=2025,
                        founded_on=date(2015, 3, 1))
    results = []
    for rs in load_all():
        if not rs.covers_region("330110") or str(rs.id) not in {"YH-2022-district-srdi", "MIIT-2026-2-srdi"}:
            continue
        _, eligible, score, unmet, texts = encode_with_gaps(rs, facts, AS_OF)
        gaps = event_gaps(eligible, unmet, texts, 3)
        results.append(ResultSummary(ruleset_id=str(rs.id), tier=str(rs.tier), eligible=eligible,
                                     score=None if score is None else f"{score:.2f}", level=str(rs.level),
                                     unmet=unmet, gaps=None if gaps is None else [GapSummary(**gap_summary(g))
                                                                                  for g in gaps]))
    payload = EvaluationCompleted(uscc=u, region_code="330110", year=2025, as_of=AS_OF, results=results)
    return event("zjtx.evaluation.evaluation.completed.v1", u, payload.model_dump(mode="json"), "330110")


async def test_evaluations_own_event_gives_the_gap_advice_once(
    stack: tuple[httpx.AsyncClient, Any, Mailbox], sf: async_sessionmaker[AsyncSession]  # noqa: F811
) -> None:
    client, producer, box = stack
    u = uscc("330110")
    await produce(producer, registered(u, "330110", "杭州余杭差一点科技有限公司", "13900000078", None))
    await produce(producer, evaluated(u), times=2)
    ent = auth("enterprise", "330110", uscc=u)

    async def advised() -> bool:
        r = await client.get("/api/v1/notifications", headers=ent)
        return any(i["template_code"] == "gap_advice" for i in r.json()["items"])
    await wait_for(advised, what="gap advice in the enterprise's inbox")
    await settled(box, sf, sms=0, emails=0)
    items = [i for i in (await client.get("/api/v1/notifications", headers=ent)).json()["items"]
             if i["template_code"] == "gap_advice"]
    assert len(items) == 1
    assert "¥600,000" in items[0]["body"] and "专精特新" in items[0]["body"]
    assert items[0]["deliveries"] == []  # inbox only: no SMS opt-in
