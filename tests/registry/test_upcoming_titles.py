"""A title announced for a later day is upcoming until then, and a scheduled worker promotes it on the day
(issue 15 item 2, registry side)."""

from __future__ import annotations

import asyncio
import types
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.registry.app.recognitions import promote_due, promotion_worker
from services.registry.events.handlers import on_recognised
from services.registry.main import spec
from shared.db import make_session_factory
from shared.events.envelope import CloudEvent
from tests.registry.conftest import scalar
from tests.registry.helpers import YH, register


def recognised(uscc: str, rid: str, valid_from: str) -> CloudEvent:
    return CloudEvent(
        id=f"e-{rid}",
        source="/zjtx/evaluation",
        type="zjtx.evaluation.tier.recognised.v1",
        subject=uscc,
        data={"recognition_id": rid, "uscc": uscc, "region_code": "330110", "tier": "innovative",
              "level": "province", "valid_from": valid_from, "valid_to": "2099-12-31"},
    )


async def shown(client: httpx.AsyncClient, uscc: str) -> tuple[list[str], bool]:
    tiers = [t["tier"] for t in (await client.get(f"/api/v1/enterprises/{uscc}", headers=YH)).json()["current_tiers"]]
    listed = await client.get("/api/v1/enterprises", params={"tier": "innovative"}, headers=YH)
    return tiers, uscc in {e["uscc"] for e in listed.json()["items"]}


async def test_future_title_is_upcoming_until_its_day(client: httpx.AsyncClient, clean: AsyncEngine) -> None:
    code = (await register(client, 901))["uscc"]
    today = datetime.now(UTC).date()
    tomorrow = today + timedelta(days=1)
    factory = make_session_factory(clean)
    async with factory() as s, s.begin():
        await on_recognised(s, recognised(code, "r-up", tomorrow.isoformat()))
    assert await scalar(clean, "SELECT status FROM registry.recognitions WHERE recognition_id = 'r-up'") == "upcoming"
    assert await shown(client, code) == ([], False)
    async with factory() as s, s.begin():
        assert await promote_due(s, today) == 0
    assert await shown(client, code) == ([], False)
    async with factory() as s, s.begin():
        assert await promote_due(s, tomorrow) == 1
    assert await shown(client, code) == (["innovative"], True)
    assert await scalar(
        clean, "SELECT count(*) FROM registry.audit_log WHERE action = 'tier.effective' AND object_id = 'r-up'"
    ) == 1
    # a title already in effect is valid at once
    async with factory() as s, s.begin():
        await on_recognised(s, recognised(code, "r-now", today.isoformat()))
    assert await scalar(clean, "SELECT status FROM registry.recognitions WHERE recognition_id = 'r-now'") == "valid"


async def test_promotion_worker_runs_on_the_service(client: httpx.AsyncClient, clean: AsyncEngine) -> None:
    assert promotion_worker in spec.workers
    code = (await register(client, 902))["uscc"]
    factory = make_session_factory(clean)
    async with factory() as s, s.begin():
        await on_recognised(s, recognised(code, "r-day", (datetime.now(UTC).date() + timedelta(days=1)).isoformat()))
    # the day has come: the stored title's valid_from is today
    async with clean.begin() as conn:
        await conn.execute(
            text("UPDATE registry.recognitions SET valid_from = current_date WHERE recognition_id = 'r-day'")
        )
    runtime = types.SimpleNamespace(session_factory=factory, stopping=asyncio.Event())
    task = asyncio.create_task(promotion_worker(runtime))
    for _ in range(100):
        if await scalar(clean, "SELECT status FROM registry.recognitions WHERE recognition_id = 'r-day'") == "valid":
            break
        await asyncio.sleep(0.05)
    runtime.stopping.set()
    await asyncio.wait_for(task, 5)
    assert (await shown(client, code))[0] == ["innovative"]
