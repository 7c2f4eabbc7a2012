"""Evaluation's event contracts (``services/evaluation/events/contracts.py``): one producer model per type it
publishes, one tolerant reader per type it consumes, and the re-evaluation job's hand-built JSON equal to the
contract's JSON. (Every test of this package also checks, on teardown, that each outbox row it caused fits its
contract: ``tests/evaluation/conftest.assert_outbox_fits_contracts``.)"""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.evaluation.app.reevaluation import start_reevaluation
from services.evaluation.db.models import Job
from services.evaluation.events.contracts import (
    CONSUMED,
    EVALUATION_COMPLETED,
    PUBLISHED,
    EvaluationCompleted,
    TierRecognised,
)
from services.evaluation.events.handlers import HANDLERS
from shared.events.catalog import EVENT_TYPES
from tests.evaluation.conftest import add_enterprise


def test_every_published_and_consumed_type_has_a_contract() -> None:
    mine = {t for t in EVENT_TYPES if t.startswith("zjtx.evaluation.")}
    assert set(PUBLISHED) == mine
    assert set(CONSUMED) == set(HANDLERS)
    assert all(t in EVENT_TYPES for t in CONSUMED)
    assert all(m.model_config.get("extra") == "forbid" for m in PUBLISHED.values())
    assert all(m.model_config.get("extra") == "ignore" for m in CONSUMED.values())


def test_producer_refuses_unknown_and_missing_fields_consumer_ignores_unknown() -> None:
    good = {"recognition_id": str(uuid.uuid4()), "uscc": "91330110MA2B000000", "region_code": "330110",
            "tier": "srdi", "level": "province", "ruleset_id": None, "batch_year": 2026,
            "announced_on": "2026-07-01", "valid_from": "2026-07-01", "valid_to": "2029-06-30",
            "renewal": False, "migrated_in": False}
    dumped = TierRecognised.model_validate(good).model_dump(mode="json")
    assert {k: dumped[k] for k in good} == good
    with pytest.raises(ValidationError):
        TierRecognised.model_validate({**good, "extra_field": 1})
    with pytest.raises(ValidationError):
        TierRecognised.model_validate({k: v for k, v in good.items() if k != "valid_to"})
    reader = CONSUMED["zjtx.registry.indicators.reported.v1"]
    parsed = reader.model_validate({"uscc": "91330110MA2B000000", "region_code": "330110", "year": 2025,
                                    "indicators": {"operating_revenue": "1"}, "added_in_v1_later": True})
    assert not hasattr(parsed, "added_in_v1_later")


async def test_reevaluation_job_payload_text_is_the_contract_json(sf: async_sessionmaker[AsyncSession]) -> None:
    """The job writes ``evaluation.completed`` as COPY text for speed; the text stored is exactly what the
    contract model writes for the same data (same fields, order, types and escaping)."""
    usccs = [await add_enterprise(sf, revenue="60000000", rd="3000000"),
             await add_enterprise(sf, revenue="8000000", rd="800000")]
    job_id = uuid.uuid4()
    async with sf() as s, s.begin():
        s.add(Job(id=job_id, kind="reevaluate", ruleset_id="T-srdi", status="queued", requested_by="test"))
    await start_reevaluation(sf, job_id, "T-srdi", as_of=date(2026, 6, 30), batch_size=1)
    async with sf() as s:
        texts = (
            await s.execute(
                text("SELECT payload::text FROM evaluation.outbox WHERE type = :t ORDER BY seq"),
                {"t": EVALUATION_COMPLETED},
            )
        ).scalars().all()
    assert len(texts) == len(usccs)
    for payload in texts:
        model = EvaluationCompleted.model_validate_json(payload)
        assert payload == model.model_dump_json()
    assert {EvaluationCompleted.model_validate_json(p).uscc for p in texts} == set(usccs)
