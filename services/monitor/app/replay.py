"""Replay: rebuild one service's read models from the event archive, over Kafka.

``zjtx replay SERVICE [--from DATE] [--types T,…]`` runs two steps, each on its own side of the broker:

1. the monitor publishes the archived events (cursor order, original ids, headers and key) onto a topic of this
   run, ``[<namespace>.]zjtx.replay.<service>.<run>`` — it reads only its own archive;
2. the target service's own consumer path applies that topic: its ``ServiceSpec`` (handlers, batch handlers,
   backbone, schema) in an :class:`EventConsumer` named ``zjtx-<service>-replay-<run>``, until the topic's end.

The inbox is bypassed by that name, not switched off: inbox rows are keyed by (consumer, event id), so the live
consumer's rows do not hold the replayed events back, each event is still applied once within the run, and a
redelivery to the live consumer is still refused. Handlers are upserts keyed by the aggregate (registry's current
tiers by recognition id, status-aware), so applying the history again ends in the same state. Nothing reads
another service's tables: the archive goes out on the broker, the target writes only its own schema.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from aiokafka import TopicPartition

from services.monitor.db import archive
from shared.db import create_engine, make_session_factory
from shared.events.catalog import dlq_of, physical
from shared.events.envelope import CloudEvent
from shared.events.kafka import make_consumer, make_producer, provision_topics
from shared.services import descriptor, load_attribute, service_names
from shared.settings import Settings, get_settings

log = logging.getLogger(__name__)

PAGE = 5000


@dataclass(frozen=True)
class ReplayResult:
    service: str
    topic: str
    published: int
    applied: int


def replay_topic(service: str, run: str) -> str:
    return f"zjtx.replay.{service}.{run}"


def _event(row: dict[str, Any]) -> CloudEvent:
    return CloudEvent(id=row["event_id"], source=row["source"], type=row["type"], subject=row["subject"],
                      time=row["time"], regioncode=row["region_code"], correlationid=row["correlation_id"],
                      data=row["payload"])


async def publish_archive(
    settings: Settings, topic: str, since: datetime | None = None, types: Sequence[str] = ()
) -> int:
    """Publish the archived events (from ``since``, of ``types``) in cursor order onto ``topic``."""
    engine = create_engine(settings.database_url, 2)
    factory = make_session_factory(engine)
    producer = make_producer(settings)
    await producer.start()
    sent = 0
    try:
        after = 0
        while True:
            async with factory() as session:
                rows = await archive.page(session, after=after, limit=PAGE, territory=None, types=types, since=since)
            if not rows:
                break
            futures = []
            for row in rows:
                ev = _event(row)
                futures.append(await producer.send(topic, key=ev.subject.encode(), value=ev.kafka_value(),
                                                   headers=ev.kafka_headers()))
            await asyncio.gather(*futures)
            sent += len(rows)
            after = rows[-1]["cursor"]
    finally:
        await producer.stop()
        await engine.dispose()
    return sent


async def apply_topic(service: str, topic: str, run: str, limit_seconds: float = 600.0) -> int:
    """The target's consumer path over ``topic`` until its end: returns how many events it applied."""
    from shared.events.consumer import EventConsumer

    spec = load_attribute(f"{descriptor(service).package}.main:spec")
    settings = get_settings(service)
    engine = create_engine(settings.database_url, 2)
    name = f"zjtx-{service}-replay-{run}"
    kafka = make_consumer(settings, name)
    producer = make_producer(settings)
    await producer.start()
    consumer = EventConsumer(name, spec.backbone, make_session_factory(engine), kafka, producer, [topic],
                             spec.handlers, batch_handlers=spec.batch_handlers)
    consumer.subscribe()
    await kafka.start()
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(await producer.partitions_for(topic))]
        ends = await kafka.end_offsets(partitions)
        deadline = asyncio.get_running_loop().time() + limit_seconds
        while True:
            await consumer.poll_once()
            done = True
            for tp, end in ends.items():
                if end and ((await kafka.committed(tp)) or 0) < end:
                    done = False
            if done:
                return consumer.processed
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"replay of {service} did not reach the end of {topic}")
    finally:
        consumer.stop()
        await kafka.stop()
        await producer.stop()
        await engine.dispose()


async def replay(service: str, since: date | None = None, types: Sequence[str] = (),
                 run: str | None = None) -> ReplayResult:
    """Publish the archive onto a topic of this run, then apply it through ``service``'s consumer path."""
    if service not in service_names() or service == "monitor":
        raise ValueError(f"未知或不可重放的服务 (unknown or not replayable service): {service}")
    settings = get_settings("monitor")
    run = run or uuid.uuid4().hex[:10]
    topic = physical(replay_topic(service, run), settings.topic_namespace)
    await provision_topics(settings, [topic, dlq_of(topic)])
    start = None if since is None else datetime(since.year, since.month, since.day, tzinfo=UTC)
    published = await publish_archive(settings, topic, start, types)
    applied = await apply_topic(service, topic, run) if published else 0
    log.info("replayed", extra={"service": service, "topic": topic, "published": published, "applied": applied})
    return ReplayResult(service=service, topic=topic, published=published, applied=applied)
