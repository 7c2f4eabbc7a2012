"""The 企业码 app's hot reads of evaluation (GET /enterprises/{uscc}/evaluations and /recognitions) pass through the
JSON PostgreSQL writes without a session (shared.db_reads): for every kind of caller it must be what the session
path (evaluating.latest_of_enterprise, recognition.of_enterprise) gives, as the response model serialises it, and
404 exactly where that path answers 404."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.evaluation.api.schemas import EnterpriseEvaluations, EnterpriseRecognitions
from services.evaluation.app import recognition
from services.evaluation.app.evaluating import evaluate_and_store, latest_of_enterprise
from services.evaluation.db import explanations
from services.evaluation.db.models import ApplicationBan, Evaluation, IndicatorReport, Recognition
from services.evaluation.events.handlers import HANDLERS
from shared.auth import Principal, Role
from shared.events.envelope import CloudEvent
from shared.problems import Problem
from tests.evaluation.conftest import add_enterprise, add_title
from tests.harness import bearer, officials_and_admin, running_service

CALLERS = {
    **officials_and_admin(),
    "commissioner assigned": Principal(sub="cm-1", role=Role.COMMISSIONER, region="330110"),
    "commissioner other": Principal(sub="cm-2", role=Role.COMMISSIONER, region="330110"),
    "agency 杭州": Principal(sub="ag", role=Role.AGENCY, region="330100"),
}


def _same(model: type[BaseModel], reference: dict[str, Any], body: bytes) -> dict[str, Any]:
    """The fast path's bytes read by the response model, as the model writes them; equal to the reference."""
    fast = model.model_validate_json(body).model_dump(mode="json")
    assert fast == model.model_validate(reference).model_dump(mode="json")
    return fast


async def _reference(sf: async_sessionmaker[AsyncSession], call: Any) -> dict[str, Any] | None:
    async with sf() as s:
        try:
            result: dict[str, Any] = await call(s)
            return result
        except Problem as exc:
            assert exc.status == 404
            return None


async def _assign(sf: async_sessionmaker[AsyncSession], uscc: str, commissioner: str) -> None:
    event_type = "zjtx.notification.commissioner.assigned.v1"
    event = CloudEvent(id=str(uuid.uuid4()), source="/zjtx/notification", type=event_type, subject=uscc,
                       time=datetime.now(UTC), data={"uscc": uscc, "region_code": "330110",
                                                     "commissioner_id": commissioner})
    async with sf() as s, s.begin():
        await HANDLERS[event_type](s, event)


async def test_evaluations_and_titles_equal_the_session_path_for_every_caller(
    sf: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    today = date.today()
    year = today.year - 1
    uscc = await add_enterprise(sf, year=year)
    bare = await add_enterprise(sf, year=year)  # known, never evaluated, no titles
    async with sf() as s, s.begin():
        await evaluate_and_store(s, uscc, year, today - timedelta(days=40))
    async with sf() as s, s.begin():  # a newer run: per tier only its rows are shown
        newer = await evaluate_and_store(s, uscc, year, today)
    async with sf() as s, s.begin():  # an older year, and a row stored before explanations were normalised
        s.add(IndicatorReport(uscc=uscc, year=year - 1, revision=1, region_code="330110",
                              indicators={"operating_revenue": "50000000", "rd_expense": "2000000"}))
    async with sf() as s, s.begin():
        old = await evaluate_and_store(s, uscc, year - 1, today)
        await s.execute(update(Evaluation).where(Evaluation.id == old[0].id).values(
            full_explanation={"legacy": True, "score": "12.50"}, explanation_template=None, explanation_values=None))
    assert newer, "the test rule sets evaluate the enterprise"
    await add_title(sf, uscc, "innovative", today - timedelta(days=30), today + timedelta(days=900))
    await add_title(sf, uscc, "srdi", today + timedelta(days=5), today + timedelta(days=1100))
    expired = await add_title(sf, uscc, "innovative", today - timedelta(days=1200), today - timedelta(days=100))
    orphan = "91330110" + uuid.uuid4().hex[:10].upper()  # titles only: region from its latest title
    await add_title(sf, orphan, "innovative", today - timedelta(days=10), today + timedelta(days=900))
    async with sf() as s, s.begin():
        await s.execute(update(Recognition).where(Recognition.id == expired).values(status="expired",
                                                                                    expired_on=today))
        s.add(ApplicationBan(uscc=uscc, ground="fraud", banned_from=today - timedelta(days=1),
                             banned_until=today + timedelta(days=700)))
    await _assign(sf, uscc, "cm-1")
    callers = {**CALLERS, "enterprise itself": Principal(sub="e", role=Role.ENTERPRISE, region="330110", uscc=uscc),
               "another enterprise": Principal(sub="o", role=Role.ENTERPRISE, region="330110", uscc=bare)}
    async with running_service("evaluation") as (_, client):
        shown = 0
        for who, p in callers.items():
            for target in (uscc, bare, orphan, "91330110MA00000000"):
                for year_q in (None, year, year - 1):
                    params = {} if year_q is None else {"year": year_q}
                    r = await client.get(f"/api/v1/enterprises/{target}/evaluations", params=params,
                                         headers=bearer(p))
                    ref = await _reference(sf, lambda s, t=target, y=year_q, p=p: latest_of_enterprise(s, p, t, y))
                    if ref is None:
                        assert r.status_code == 404, (who, target, r.text)
                        continue
                    assert r.status_code == 200 and r.headers["content-type"] == "application/json", (who, r.text)
                    fast = _same(EnterpriseEvaluations, {"uscc": target, "year": year_q, "items": ref}, r.content)
                    assert r.json() == fast
                    shown += bool(fast["items"])
                r = await client.get(f"/api/v1/enterprises/{target}/recognitions", headers=bearer(p))
                ref = await _reference(sf, lambda s, t=target, p=p: recognition.of_enterprise(s, p, t, today))
                if ref is None:
                    assert r.status_code == 404, (who, target, r.text)
                    continue
                assert r.status_code == 200, (who, target, r.text)
                assert r.json() == _same(EnterpriseRecognitions, ref, r.content)
        assert shown >= 8
        # what the fixtures hold, as the owner reads it
        own = bearer(callers["enterprise itself"])
        titles = (await client.get(f"/api/v1/enterprises/{uscc}/recognitions", headers=own)).json()
        assert [len(titles[k]) for k in ("current", "upcoming", "past")] == [1, 1, 1]
        assert titles["banned_until"] == (today + timedelta(days=700)).isoformat()
        items = (await client.get(f"/api/v1/enterprises/{uscc}/evaluations", params={"year": year},
                                  headers=own)).json()["items"]
        assert {i["id"] for i in items} == {str(r.id) for r in newer}
        assert [(i["tier"], i["ruleset_id"]) for i in items] == sorted((i["tier"], i["ruleset_id"]) for i in items)
        legacy = (await client.get(f"/api/v1/enterprises/{uscc}/evaluations", params={"year": year - 1},
                                   headers=own)).json()["items"]
        assert {"legacy": True, "score": "12.50"} in [i["explanation"] for i in legacy]
        # a process that has not seen a template yet loads it from the database
        monkeypatch.setattr(explanations, "_TEMPLATES", {})
        again = (await client.get(f"/api/v1/enterprises/{uscc}/evaluations", params={"year": year},
                                  headers=own)).json()["items"]
        assert again == items
