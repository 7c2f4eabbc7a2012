"""Events through the real broker: recognitions consumed into current tiers; registry events relayed."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from services.registry.events.handlers import on_expired, on_recognised, on_revoked
from shared.db import make_session_factory
from shared.events.envelope import CloudEvent
from tests.harness import make_producer, read_topic, running_service, wait_for
from tests.harness import topic as harness_topic
from tests.registry.conftest import scalar
from tests.registry.helpers import YH, YUHANG, register


def tier_event(kind: str, uscc: str, rid: str, **data: Any) -> CloudEvent:
    base = {"recognition_id": rid, "uscc": uscc, "region_code": YUHANG, "tier": "srdi", "level": "province"}
    return CloudEvent(
        id=str(uuid.uuid4()),
        source="/zjtx/evaluation",
        type=f"zjtx.evaluation.tier.{kind}.v1",
        subject=uscc,
        regioncode=YUHANG,
        data={**base, **data},
    )


RECOGNISED = {
    "ruleset_id": "MIIT-2022-63",
    "batch_year": 2025,
    "announced_on": "2025-06-01",
    "valid_from": "2025-06-01",
    "valid_to": "2028-05-31",
    "renewal": False,
    "migrated_in": False,
}


async def test_recognition_events_via_broker(clean: AsyncEngine) -> None:
    async with running_service("registry", consumer=True) as (_, client):
        code = (await register(client, 1))["uscc"]
        producer = await make_producer()
        try:

            async def send(ev: CloudEvent) -> None:
                await producer.send_and_wait(
                    harness_topic("zjtx.evaluation.events"),
                    value=ev.kafka_value(),
                    key=code.encode(),
                    headers=ev.kafka_headers(),
                )

            recognised = tier_event("recognised", code, "rec-1", **RECOGNISED)
            await send(recognised)
            await send(recognised)  # duplicate delivery

            async def tiers() -> list[dict[str, Any]]:
                r = await client.get(f"/api/v1/enterprises/{code}", headers=YH)
                out: list[dict[str, Any]] = r.json()["current_tiers"]
                return out

            async def has_tier() -> bool:
                return len(await tiers()) == 1

            await wait_for(has_tier, timeout=30, what="tier recognised")
            assert (await tiers())[0]["tier"] == "srdi"
            listed = (await client.get("/api/v1/enterprises", params={"tier": "srdi"}, headers=YH)).json()["items"]
            assert [e["uscc"] for e in listed] == [code]

            await send(tier_event("revoked", code, "rec-1", ground="data_fraud", revoked_on="2026-01-10"))

            async def no_tier() -> bool:
                return await tiers() == []

            await wait_for(no_tier, timeout=30, what="tier revoked")
            await send(tier_event("recognised", code, "rec-2", **{**RECOGNISED, "tier": "innovative"}))
            await send(tier_event("expired", code, "rec-2", expired_on="2026-02-01"))

            async def rec2_expired() -> bool:
                return (
                    await scalar(clean, "SELECT status FROM registry.recognitions WHERE recognition_id='rec-2'")
                    == "expired"
                )

            await wait_for(rec2_expired, timeout=30, what="tier expired")
            assert await tiers() == []
            assert await scalar(clean, "SELECT count(*) FROM registry.inbox") == 4  # the duplicate was absorbed
        finally:
            await producer.stop()


async def test_stale_and_out_of_order_events(clean: AsyncEngine) -> None:
    factory = make_session_factory(clean)
    code = "91330110MA0000015C"
    async with factory() as s, s.begin():
        await on_revoked(s, tier_event("revoked", code, "r9", ground="x", revoked_on="2026-01-01"))
        await on_recognised(s, tier_event("recognised", code, "r9", **RECOGNISED))  # late: must not resurrect
        await on_expired(s, tier_event("expired", code, "r9", expired_on="2028-05-31"))  # must not undo revoked
    assert await scalar(clean, "SELECT status FROM registry.recognitions WHERE recognition_id='r9'") == "revoked"
    assert (
        str(await scalar(clean, "SELECT valid_to FROM registry.recognitions WHERE recognition_id='r9'")) == "2028-05-31"
    )


async def test_registry_events_reach_the_topic(clean: AsyncEngine) -> None:
    async with running_service("registry", relay=True) as (_, client):
        code = (await register(client, 7))["uscc"]

        async def published() -> bool:
            return await scalar(clean, "SELECT count(*) FROM registry.outbox") == 0

        await wait_for(published, timeout=30, what="outbox drained")
    records = await read_topic("zjtx.registry.events", 1, timeout=10)
    mine = [r for r in records if r.key == code.encode()]
    assert mine, "registered event not on the topic"
    headers = dict(mine[0].headers)
    assert headers["ce_type"] == b"zjtx.registry.enterprise.registered.v1"
    assert headers["ce_regioncode"] == YUHANG.encode() and headers["ce_subject"] == code.encode()
