"""Commissioner scope: the notification service's assignments → the read model that limits commissioner reads."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from services.registry.events.handlers import on_commissioner_assigned, on_commissioner_unavailable
from shared.db import make_session_factory
from shared.events.envelope import CloudEvent
from tests.harness import auth, make_producer, running_service, topic, wait_for
from tests.registry.conftest import scalar
from tests.registry.helpers import LIANDU, YH, YUHANG, ent_auth, register

TOPIC = "zjtx.notification.events"  # the test's own namespace is added when sending (tests/conftest.py)


def assigned(
    uscc: str, cid: str, previous: str | None = None, *, region: str = YUHANG, at: datetime | None = None
) -> CloudEvent:
    return CloudEvent(
        id=str(uuid.uuid4()),
        source="/zjtx/notification",
        type="zjtx.notification.commissioner.assigned.v1",
        subject=uscc,
        time=at or datetime.now(UTC),
        regioncode=region,
        data={
            "uscc": uscc,
            "region_code": region,
            "tier": "srdi",
            "level": "county",
            "commissioner_id": cid,
            "commissioner_name": f"专员{cid}",
            "previous_commissioner_id": previous,
            "reason": "新认定",
        },
    )


def unavailable(uscc: str, *, region: str = YUHANG, at: datetime | None = None) -> CloudEvent:
    return CloudEvent(
        id=str(uuid.uuid4()),
        source="/zjtx/notification",
        type="zjtx.notification.commissioner.unavailable.v1",
        subject=uscc,
        time=at or datetime.now(UTC),
        regioncode=region,
        data={"uscc": uscc, "region_code": region, "tier": "srdi", "level": "county", "alert_region": region},
    )


def released(uscc: str, cid: str, *, region: str = YUHANG) -> CloudEvent:
    return CloudEvent(
        id=str(uuid.uuid4()),
        source="/zjtx/notification",
        type="zjtx.notification.commissioner.released.v1",
        subject=uscc,
        regioncode=region,
        data={"uscc": uscc, "region_code": region, "commissioner_id": cid, "reason": "有效认定均已终止"},
    )


def cm(cid: str, region: str = YUHANG) -> dict[str, str]:
    """A commissioner's token: role commissioner, sub = the commissioner id (as in the notification service)."""
    return auth("commissioner", region, sub=cid)


async def visible(client: httpx.AsyncClient, cid: str) -> list[str]:
    r = await client.get("/api/v1/enterprises", headers=cm(cid))
    assert r.status_code == 200, r.text
    return [e["uscc"] for e in r.json()["items"]]


async def test_assignments_via_broker_scope_commissioner_reads(clean: AsyncEngine) -> None:
    async with running_service("registry", consumer=True) as (_, client):
        a = (await register(client, 1))["uscc"]
        b = (await register(client, 2))["uscc"]
        c = (await register(client, 3, LIANDU))["uscc"]
        r = await client.put(
            f"/api/v1/enterprises/{a}/indicators/2025",
            json={"indicators": {"operating_revenue": "35000000", "employees": 120}},
            headers=ent_auth(a),
        )
        assert r.status_code == 200, r.text
        # before any assignment a commissioner of the region reads nothing (it used to read the whole region)
        assert await visible(client, "cm-1") == []
        assert (await client.get(f"/api/v1/enterprises/{a}", headers=cm("cm-1"))).status_code == 404

        producer = await make_producer()
        try:

            async def send(ev: CloudEvent) -> None:
                await producer.send_and_wait(
                    topic(TOPIC), value=ev.kafka_value(), key=ev.subject.encode(), headers=ev.kafka_headers()
                )

            first = assigned(a, "cm-1")
            await send(first)
            await send(first)  # redelivery
            await send(assigned(c, "cm-1", region=LIANDU))
            await send(assigned(b, "cm-2"))

            async def cm1_sees_both() -> bool:
                return sorted(await visible(client, "cm-1")) == sorted([a, c])

            await wait_for(cm1_sees_both, timeout=30, what="assignments consumed")
            assert await visible(client, "cm-2") == [b]
            assert (await client.get(f"/api/v1/enterprises/{a}", headers=cm("cm-1"))).status_code == 200
            assert (await client.get(f"/api/v1/enterprises/{b}", headers=cm("cm-1"))).status_code == 404
            # the assignment, not the token's region, decides (c is in 莲都, the token says 余杭)
            assert (await client.get(f"/api/v1/enterprises/{c}", headers=cm("cm-1"))).status_code == 200
            assert (await client.get(f"/api/v1/enterprises/{a}/indicators", headers=cm("cm-1"))).status_code == 200
            r = await client.get(f"/api/v1/enterprises/{a}/indicators/2025", headers=cm("cm-1"))
            assert r.status_code == 200 and r.json()["indicators"]["employees"] == 120
            assert (await client.get(f"/api/v1/enterprises/{a}/indicators", headers=cm("cm-2"))).status_code == 404
            assert (await client.get(f"/api/v1/enterprises/{a}/indicators/2025", headers=cm("cm-2"))).status_code == 404
            # a commissioner still only reads
            r = await client.put(
                f"/api/v1/enterprises/{a}/indicators/2025", json={"indicators": {"employees": 1}}, headers=cm("cm-1")
            )
            assert r.status_code == 403

            # reassignment to another commissioner replaces the previous one
            await send(assigned(a, "cm-2", previous="cm-1"))
            # 莲都's enterprise loses its commissioner (nobody available)
            await send(unavailable(c, region=LIANDU))

            async def moved() -> bool:
                return await visible(client, "cm-1") == [] and sorted(await visible(client, "cm-2")) == sorted([a, b])

            await wait_for(moved, timeout=30, what="reassignment consumed")
            assert (await client.get(f"/api/v1/enterprises/{a}", headers=cm("cm-1"))).status_code == 404
            assert (await client.get(f"/api/v1/enterprises/{a}/indicators/2025", headers=cm("cm-2"))).status_code == 200

            # a stale assignment (older event time) arriving late changes nothing
            stale = assigned(a, "cm-1", at=datetime.now(UTC) - timedelta(hours=1))
            await send(stale)

            async def stale_consumed() -> bool:  # the inbox row commits with the (skipped) effect
                return bool(await scalar(clean, "SELECT count(*) FROM registry.inbox WHERE event_id = :e", e=stale.id))

            await wait_for(stale_consumed, timeout=30, what="stale event consumed")
            n = "SELECT count(*) FROM registry.inbox WHERE event_type LIKE 'zjtx.notification.%'"
            assert await scalar(clean, n) == 6  # the duplicate was absorbed
            assert await visible(client, "cm-1") == []
            assert (
                await scalar(
                    clean, "SELECT commissioner_id FROM registry.commissioner_assignments WHERE uscc = :u", u=a
                )
                == "cm-2"
            )

            # the enterprise's last title ends: notification releases cm-2, who loses read access
            await send(released(a, "cm-2"))

            async def released_consumed() -> bool:
                return await visible(client, "cm-2") == [b]

            await wait_for(released_consumed, timeout=30, what="release consumed")
            assert (await client.get(f"/api/v1/enterprises/{a}", headers=cm("cm-2"))).status_code == 404
        finally:
            await producer.stop()
        # officials and the enterprise itself are unaffected
        assert (await client.get(f"/api/v1/enterprises/{a}", headers=YH)).status_code == 200
        assert (await client.get(f"/api/v1/enterprises/{a}", headers=ent_auth(a))).status_code == 200


async def test_out_of_order_assignments_keep_the_latest(clean: AsyncEngine) -> None:
    factory = make_session_factory(clean)
    code = "91330110MA0000015C"
    t0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    newest = assigned(code, "cm-3", previous="cm-2", at=t0 + timedelta(minutes=2))
    events: list[Any] = [
        (on_commissioner_assigned, newest),
        (on_commissioner_assigned, assigned(code, "cm-1", at=t0)),  # older: ignored
        (on_commissioner_unavailable, unavailable(code, at=t0 + timedelta(minutes=1))),  # older: ignored
        (on_commissioner_assigned, assigned(code, "cm-2", previous="cm-1", at=t0 + timedelta(minutes=1))),
    ]
    async with factory() as s, s.begin():
        for handler, event in events:
            await handler(s, event)
    row = "SELECT {} FROM registry.commissioner_assignments WHERE uscc = :u"
    assert await scalar(clean, row.format("commissioner_id"), u=code) == "cm-3"
    assert await scalar(clean, row.format("event_id"), u=code) == newest.id
    # a later "unavailable" clears it
    async with factory() as s, s.begin():
        await on_commissioner_unavailable(s, unavailable(code, at=t0 + timedelta(minutes=3)))
    assert await scalar(clean, row.format("commissioner_id"), u=code) is None
    async with factory() as s, s.begin():
        await on_commissioner_assigned(s, assigned(code, "cm-3", at=t0 + timedelta(minutes=4)))
    assert await scalar(clean, row.format("commissioner_id"), u=code) == "cm-3"
