"""Backbone throughput: raw broker produce→consume vs outbox→relay→idempotent consumer, on this machine.

    .venv/bin/python bench/backbone_throughput.py [--n 20000] [--size 1024]

Starts its own embedded PostgreSQL and Tansu (or uses ZJTX_DATABASE_URL / ZJTX_KAFKA_BOOTSTRAP) and prints:
raw produce and consume rates, outbox insert rate (batched transactions), relay publish rate (with the topic
guard the services run: topics checked before and after each batch), consumer
apply rate (inbox + effect, one transaction per event), end-to-end rate and the ratio to the raw rate.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiokafka import AIOKafkaConsumer
from sqlalchemy import Column, MetaData, String, Table, func, select

from shared.backbone import Backbone
from shared.db import create_engine, make_session_factory
from shared.events.consumer import EventConsumer
from shared.events.envelope import CloudEvent
from shared.events.kafka import TopicGuard, make_consumer, make_producer, provision_topics
from shared.events.outbox import OutboxRelay, emit_many, outbox_row
from shared.infra import free_port, start_postgres, start_tansu
from shared.settings import Settings


async def raw_rate(settings: Settings, n: int, size: int) -> tuple[float, float]:
    topic = f"bench.raw.{uuid.uuid4().hex[:6]}"
    await provision_topics(settings, [topic])
    producer = make_producer(settings)
    await producer.start()
    payload = b"x" * size
    started = time.perf_counter()
    futures = [await producer.send(topic, value=payload, key=str(i % 1000).encode()) for i in range(n)]
    await asyncio.gather(*futures)
    produce = n / (time.perf_counter() - started)
    await producer.stop()
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=settings.kafka_bootstrap, group_id=f"bench-{topic}",
        auto_offset_reset="earliest", enable_auto_commit=False, session_timeout_ms=2000, heartbeat_interval_ms=400,
    )
    await consumer.start()
    seen = 0
    started = time.perf_counter()
    while seen < n:
        batch = await consumer.getmany(timeout_ms=500, max_records=5000)
        seen += sum(len(v) for v in batch.values())
    consume = n / (time.perf_counter() - started)
    await consumer.stop()
    return produce, consume


async def backbone_rate(settings: Settings, n: int, size: int) -> dict[str, float]:
    schema = f"bench_{uuid.uuid4().hex[:6]}"
    md = MetaData(schema=schema)
    bb = Backbone("registry", md)
    effects = Table("effects", md, Column("event_id", String(100)), Column("subject", String(64)))
    engine = create_engine(settings.database_url, 10)
    async with engine.begin() as conn:
        await conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        await conn.run_sync(md.create_all)
    sf = make_session_factory(engine)
    body = {"blob": "y" * (size - 40)}
    started = time.perf_counter()
    for start in range(0, n, 1000):
        async with sf() as s, s.begin():
            rows = [
                outbox_row(bb, "zjtx.registry.enterprise.updated.v1", f"USCC{i:014d}", body)
                for i in range(start, min(n, start + 1000))
            ]
            await emit_many(s, bb, rows)
    t_insert = time.perf_counter() - started
    producer = make_producer(settings)
    await producer.start()
    relay = OutboxRelay(bb, sf, producer, batch_size=2000, guard=TopicGuard.from_settings(settings))
    started = time.perf_counter()
    published = await relay.drain()
    t_relay = time.perf_counter() - started

    async def handler(session, event: CloudEvent) -> None:  # type: ignore[no-untyped-def]
        await session.execute(effects.insert().values(event_id=event.id, subject=event.subject))

    kc = make_consumer(settings, f"bench-{schema}")
    consumer = EventConsumer(
        "bench", bb, sf, kc, producer, ["zjtx.registry.events"], {"zjtx.registry.enterprise.updated.v1": handler}
    )
    consumer.subscribe()
    await kc.start()
    started = time.perf_counter()
    while consumer.processed < published:
        await consumer.poll_once(timeout_ms=500, max_records=2000)
    t_consume = time.perf_counter() - started
    async with sf() as s:
        applied = (await s.execute(select(func.count()).select_from(effects))).scalar_one()
    await kc.stop()
    await producer.stop()
    async with engine.begin() as conn:
        await conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    await engine.dispose()
    assert applied == n, (applied, n)
    return {
        "outbox_insert": n / t_insert,
        "relay_publish": published / t_relay,
        "consumer_apply": applied / t_consume,
        "end_to_end": n / (t_insert + t_relay + t_consume),
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--size", type=int, default=1024)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="zjtx-bench-"))
    pg = tansu = None
    url = os.environ.get("ZJTX_DATABASE_URL")
    if not url:
        pg, url = start_postgres(tmp / "pg", "bench")
    bootstrap = os.environ.get("ZJTX_KAFKA_BOOTSTRAP")
    if not bootstrap:
        port = free_port()
        tansu = start_tansu(port)
        bootstrap = f"127.0.0.1:{port}"
    settings = Settings(service="registry", database_url=url, kafka_bootstrap=bootstrap, kafka_session_timeout_ms=2000)
    try:
        await provision_topics(settings)
        produce, consume = await raw_rate(settings, args.n, args.size)
        print(f"raw broker       produce {produce:>9,.0f} msg/s   consume {consume:>9,.0f} msg/s  ({args.size} B)")
        raw_e2e = 1 / (1 / produce + 1 / consume)
        rates = await backbone_rate(settings, args.n, args.size)
        for name, value in rates.items():
            print(f"{name:<16} {value:>9,.0f} events/s")
        ratio = rates["end_to_end"] / raw_e2e
        print(f"raw produce→consume {raw_e2e:,.0f} msg/s; backbone end-to-end / raw = {ratio:.1%}")
    finally:
        if tansu:
            tansu.terminate()
        if pg:
            pg.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
