"""Replay: drop registry's current-tiers read model, rebuild it from the monitor's archive, compare."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.monitor.app.replay import replay
from shared.events.catalog import topic_of
from tests.harness import engine_for, make_producer, running_service, topic, wait_for
from tests.monitor.conftest import event

EVAL = "zjtx.evaluation.tier.{}.v1"


def _tier_events(run: str) -> list[Any]:
    region = "331102"
    code = f"91331102{uuid.uuid4().int % 10**9:09d}X"
    other = f"91330110{uuid.uuid4().int % 10**9:09d}X"

    def recognised(rid: str, uscc: str, reg: str, tier: str, start: str, end: str) -> Any:
        return event(EVAL.format("recognised"), uscc, reg, {
            "recognition_id": rid, "uscc": uscc, "region_code": reg, "tier": tier, "level": "province",
            "ruleset_id": None, "batch_year": int(start[:4]), "announced_on": start, "valid_from": start,
            "valid_to": end, "renewal": False, "migrated_in": False})

    def ended(verb: str, rid: str, uscc: str, reg: str, tier: str, on: str) -> Any:
        data = {"recognition_id": rid, "uscc": uscc, "region_code": reg, "tier": tier, "level": "province"}
        if verb == "expired":
            data["expired_on"] = on
        else:
            data |= {"revoked_on": on, "ground": "data_fraud", "ban_until": None}
        return event(EVAL.format(verb), uscc, reg, data)

    return [
        recognised(f"{run}-1", code, region, "innovative", "2023-07-01", "2026-06-30"),
        ended("expired", f"{run}-1", code, region, "innovative", "2026-07-01"),
        recognised(f"{run}-2", code, region, "srdi", "2026-06-01", "2029-05-31"),
        ended("revoked", f"{run}-3", other, "330110", "srdi", "2026-10-01"),  # the end before its recognition
        recognised(f"{run}-3", other, "330110", "srdi", "2025-01-01", "2027-12-31"),
        recognised(f"{run}-4", other, "330110", "little_giant", "2026-09-01", "2029-08-31"),
    ]


async def _tiers(engine: AsyncEngine, run: str) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT * FROM registry.recognitions WHERE recognition_id LIKE :r "
                                       "ORDER BY recognition_id"), {"r": run + "-%"})
        return [{k: v for k, v in r._mapping.items() if k not in ("updated_at", "created_at")} for r in rows]


@pytest.fixture
async def registry_engine() -> Any:
    engine = engine_for("registry")
    yield engine
    await engine.dispose()


async def test_dropped_tier_read_model_is_rebuilt_exactly(clean: AsyncEngine, registry_engine: AsyncEngine) -> None:
    run = f"rp{uuid.uuid4().hex[:8]}"
    sent = _tier_events(run)
    producer = await make_producer()
    try:
        async with running_service("registry", consumer=True), running_service("monitor", consumer=True):
            for ev in sent:
                await producer.send_and_wait(topic(topic_of("evaluation")), key=ev.subject.encode(),
                                             value=ev.kafka_value(), headers=ev.kafka_headers())

            async def both_applied() -> bool:
                async with clean.connect() as conn:
                    archived = (await conn.execute(text("SELECT count(*) FROM monitor.events"))).scalar()
                return archived == len(sent) and len(await _tiers(registry_engine, run)) == 4

            await wait_for(both_applied, timeout=30, what="registry and monitor to apply the events")
    finally:
        await producer.stop()
    before = await _tiers(registry_engine, run)
    assert [(r["recognition_id"][-1], r["status"]) for r in before] == [
        ("1", "expired"), ("2", "valid"), ("3", "revoked"), ("4", "valid")]
    assert before[2]["valid_from"] == date(2025, 1, 1)  # the late recognition filled in the revoked row's facts

    async with registry_engine.begin() as conn:  # drop the read model
        await conn.execute(text("DELETE FROM registry.recognitions WHERE recognition_id LIKE :r"), {"r": run + "-%"})
    assert await _tiers(registry_engine, run) == []

    result = await replay("registry")
    assert (result.published, result.applied) == (len(sent), len(sent))
    assert await _tiers(registry_engine, run) == before

    # replaying again changes nothing (the same history applied once more ends in the same state)
    again = await replay("registry")
    assert again.applied == len(sent) and again.topic != result.topic
    assert await _tiers(registry_engine, run) == before
    # --from after the last event: nothing to replay
    assert (await replay("registry", since=date(2100, 1, 1))).published == 0


async def test_replay_refuses_unknown_services() -> None:
    with pytest.raises(ValueError, match="未知"):
        await replay("billing")
    with pytest.raises(ValueError):
        await replay("monitor")


def test_zjtx_replay_is_a_subcommand_the_monitor_provides(capsys: pytest.CaptureFixture[str]) -> None:
    from shared.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["replay", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--from" in out and "registry" in out and "monitor" not in out.split("positional")[0]
