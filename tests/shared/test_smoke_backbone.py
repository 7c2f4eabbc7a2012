"""Smoke: an event emitted in a transaction is relayed and applied exactly once by a consumer."""

from __future__ import annotations

import uuid

from sqlalchemy import Column, MetaData, String, Table, func, select

from shared.backbone import Backbone
from shared.db import make_session_factory
from shared.events.consumer import EventConsumer
from shared.events.kafka import make_consumer
from shared.events.outbox import OutboxRelay, emit
from tests.harness import engine_for, make_producer, settings, unique_group, wait_for


async def test_emit_relay_consume_once() -> None:
    src_md = MetaData(schema="bb_src")
    src = Backbone("registry", src_md)
    dst_md = MetaData(schema="bb_dst")
    dst = Backbone("evaluation", dst_md)
    effects = Table("effects", dst_md, Column("event_id", String(100)), Column("subject", String(64)))
    engine = engine_for("registry")
    async with engine.begin() as conn:
        for schema, md in (("bb_src", src_md), ("bb_dst", dst_md)):
            await conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            await conn.run_sync(md.create_all)
    sf = make_session_factory(engine)
    subject = "91330100" + uuid.uuid4().hex[:10].upper()
    async with sf() as s, s.begin():
        await emit(s, src, "zjtx.registry.enterprise.registered.v1", subject, {"uscc": subject}, regioncode="330110")

    producer = await make_producer()
    relay = OutboxRelay(src, sf, producer)
    assert await relay.drain() == 1

    async def handler(session, event):  # type: ignore[no-untyped-def]
        await session.execute(effects.insert().values(event_id=event.id, subject=event.subject))

    kc = make_consumer(settings("evaluation"), unique_group())
    consumer = EventConsumer(
        "smoke", dst, sf, kc, producer, ["zjtx.registry.events"], {"zjtx.registry.enterprise.registered.v1": handler}
    )
    consumer.subscribe()
    await kc.start()

    async def applied() -> bool:
        await consumer.poll_once(timeout_ms=200)
        async with sf() as s:
            q = select(func.count()).select_from(effects).where(effects.c.subject == subject)
            n = (await s.execute(q)).scalar()
        return n == 1

    try:
        await wait_for(applied, what="effect applied")
    finally:
        await kc.stop()
        await producer.stop()
        await engine.dispose()
