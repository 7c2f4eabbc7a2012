"""Through the real broker: the recognition event arrives 3 times → one entitlement per policy, one payment;
revocation after payment → recovery (追回); expiry → unapproved entitlements cancelled; events emitted."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from services.finance.db.models import RecoveryRow
from shared.events.envelope import CloudEvent
from tests.finance.util import (
    assert_ledger_consistent,
    entitlements_of,
    money,
    new_uscc,
    pay_lines,
    recognised,
    revoked,
    seed,
)
from tests.harness import auth, make_producer, read_topic, running_service, runtime_of, wait_for
from tests.harness import topic as harness_topic

TOPIC = "zjtx.evaluation.events"


async def _send(producer: Any, event: CloudEvent) -> None:
    await producer.send_and_wait(
        harness_topic(TOPIC), value=event.kafka_value(), key=event.subject.encode(), headers=event.kafka_headers()
    )


async def test_recognised_three_times_revoked_expired_through_broker(gateway) -> None:  # type: ignore[no-untyped-def]
    uscc = new_uscc("330110")
    rec_id = f"R-{uuid.uuid4().hex[:8]}"
    event = recognised(uscc, "330110", "srdi", "province", 2026, recognition_id=rec_id)
    redelivered = event  # same event id twice (at-least-once delivery)
    republished = recognised(uscc, "330110", "srdi", "province", 2026, recognition_id=rec_id)  # new id, same facts
    producer = await make_producer()
    try:
        async with running_service("finance", relay=True, consumer=True, payment_gateway_url=gateway.url) as (
            app,
            client,
        ):
            sf = runtime_of(app).session_factory
            await seed(
                sf,
                {("330100", "sme_development", 2026): "5000000.00", ("330110", "sme_development", 2026): "5000000.00"},
            )
            for e in (event, redelivered, republished):
                await _send(producer, e)

            async def two_entitlements() -> bool:
                return len(await entitlements_of(sf, uscc)) == 2

            await wait_for(two_entitlements, what="entitlements from the recognition event")
            rows = {e.jurisdiction: e for e in await entitlements_of(sf, uscc)}
            assert rows["330100"].amount == Decimal("500000.00") and rows["330110"].amount == Decimal("200000.00")

            # approve the city's; the service's own disbursement worker pays it through the gateway
            r = await client.post(
                f"/api/v1/entitlements/{rows['330100'].id}/approve", headers=money(auth("city_official", "330100"))
            )
            assert r.status_code == 200, r.text

            async def paid() -> bool:
                return any(e.status == "paid" for e in await entitlements_of(sf, uscc))

            await wait_for(paid, what="payment by the worker")
            # more copies after payment change nothing
            await _send(producer, event)
            await _send(producer, recognised(uscc, "330110", "srdi", "province", 2026, recognition_id=rec_id))

            # revoked after payment → recovery for the city's paid reward; the county's pending one is cancelled
            await _send(producer, revoked(uscc, "330110", rec_id))

            async def recovered() -> bool:
                async with sf() as s:
                    return (await s.execute(select(RecoveryRow).where(RecoveryRow.uscc == uscc))).first() is not None

            await wait_for(recovered, what="recovery raised")
            rows = {e.jurisdiction: e for e in await entitlements_of(sf, uscc)}
            assert len(rows) == 2
            assert rows["330100"].status == "recovering" and rows["330110"].status == "cancelled"
            assert gateway.gw.paid_count == 1 and await pay_lines(sf) == 2

            r = await client.get("/api/v1/recoveries", headers=auth("city_official", "330100"))
            rec = r.json()[0]
            assert rec["amount"] == "500000.00" and rec["status"] == "open"
            r = await client.post(
                f"/api/v1/recoveries/{rec['id']}/repaid",
                headers=money(auth("city_official", "330100") | {"Idempotency-Key": "rp-1"}),
            )
            assert r.status_code == 200 and r.json()["status"] == "repaid"
            r = await client.post(
                f"/api/v1/recoveries/{rec['id']}/repaid",
                headers=money(auth("city_official", "330100") | {"Idempotency-Key": "rp-1"}),
            )
            assert r.status_code == 200
            await assert_ledger_consistent(sf)

            # expiry of another recognition: its unapproved entitlements are cancelled
            other = new_uscc("330110")
            rec2 = f"R-{uuid.uuid4().hex[:8]}"
            await _send(producer, recognised(other, "330110", "little_giant", "national", 2026, recognition_id=rec2))

            async def three() -> bool:
                return len(await entitlements_of(sf, other)) == 3

            await wait_for(three, what="little giant entitlements")
            expired = CloudEvent(
                id=str(uuid.uuid4()),
                source="/zjtx/evaluation",
                type="zjtx.evaluation.tier.expired.v1",
                subject=other,
                regioncode="330110",
                data={
                    "recognition_id": rec2,
                    "uscc": other,
                    "region_code": "330110",
                    "tier": "little_giant",
                    "level": "national",
                    "expired_on": "2029-08-31",
                },
            )
            await _send(producer, expired)

            async def cancelled() -> bool:
                return all(e.status == "cancelled" for e in await entitlements_of(sf, other))

            await wait_for(cancelled, what="expiry cancels unapproved entitlements")

            # finance's own events reached its topic (relay on): created, approved, paid, recovery raised
            async def emitted() -> bool:
                types = {
                    dict(m.headers).get("ce_type", b"").decode()
                    for m in await read_topic("zjtx.finance.events", 10, timeout=2)
                    if m.key == uscc.encode()
                }
                return {
                    "zjtx.finance.entitlement.created.v1",
                    "zjtx.finance.entitlement.approved.v1",
                    "zjtx.finance.disbursement.paid.v1",
                    "zjtx.finance.recovery.raised.v1",
                } <= types

            await wait_for(emitted, timeout=20, interval=0.5, what="finance events on the topic")
    finally:
        await producer.stop()
