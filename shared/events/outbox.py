"""Transactional outbox: ``emit`` writes the event in the caller's transaction; ``OutboxRelay`` publishes.

The relay claims unpublished rows with ``SELECT … FOR UPDATE SKIP LOCKED`` (so several relays never
publish the same row concurrently), publishes with acks=all, marks them and commits. A crash between
publish and mark republishes the rows: consumers absorb that with their inbox. It wakes on LISTEN/NOTIFY
and polls as a fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.backbone import Backbone
from shared.context import traceparent_var
from shared.db import driver_connection
from shared.events.catalog import EVENT_TYPES, physical, topic_of
from shared.events.encoder import (
    OUTBOX_COLUMNS,
    current_correlation,
    dataschema_of,
    envelope_headers,
    source_of,
    wake_relay,
)
from shared.events.envelope import dumps_text, loads
from shared.events.partitioning import partition_of
from shared.ids import uuid7
from shared.metrics import OUTBOX_OLDEST_AGE, OUTBOX_PENDING, OUTBOX_PUBLISHED

log = logging.getLogger(__name__)


def outbox_row(
    backbone: Backbone,
    event_type: str,
    subject: str,
    data: BaseModel | dict[str, Any],
    *,
    regioncode: str | None = None,
    event_id: uuid.UUID | None = None,
    time: str | None = None,
) -> dict[str, Any]:
    """The outbox row of one event (envelope attributes as ``ce_*`` headers by ``encoder.envelope_headers``,
    payload as JSON). ``emit`` writes one, ``emit_many`` many."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"event type {event_type!r} is not declared in shared.events.catalog")
    payload = data.model_dump(mode="json") if isinstance(data, BaseModel) else data
    eid = event_id or uuid7()
    sid = str(eid)
    headers = envelope_headers(
        source=source_of(backbone.service), event_type=event_type, event_id=sid, subject=subject,
        time=time or datetime.now(UTC).isoformat(), dataschema=dataschema_of(backbone.service, event_type),
        regioncode=regioncode, correlationid=current_correlation(sid), traceparent=traceparent_var.get(),
    )
    return {
        "event_id": eid,
        "topic": topic_of(backbone.service),
        "key": subject,
        "type": event_type,
        "headers": headers,
        "payload": payload,
    }


async def emit(
    session: AsyncSession,
    backbone: Backbone,
    event_type: str,
    subject: str,
    data: BaseModel | dict[str, Any],
    *,
    regioncode: str | None = None,
    event_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Add an event to the outbox inside the caller's open transaction. Returns the event id."""
    row = outbox_row(backbone, event_type, subject, data, regioncode=regioncode, event_id=event_id)
    await session.execute(backbone.outbox.insert().values(row))
    await wake_relay(session, backbone)
    eid: uuid.UUID = row["event_id"]
    return eid


async def emit_many(session: AsyncSession, backbone: Backbone, rows: list[dict[str, Any]]) -> None:
    """Bulk variant of :func:`emit` for rows built with :func:`outbox_row` (imports, batch event handlers):
    one COPY in the caller's transaction (a multi-row INSERT is compiled and planned anew for every row
    count, which cost more than the rows)."""
    if not rows:
        return
    raw = await driver_connection(session)
    await raw.copy_records_to_table(
        "outbox", schema_name=backbone.outbox.schema, columns=list(OUTBOX_COLUMNS),
        records=[(r["event_id"], r["topic"], r["key"], r["type"], dumps_text(r["headers"]), dumps_text(r["payload"]))
                 for r in rows],
    )
    await wake_relay(session, backbone)


class OutboxRelay:
    """Publishes a service's outbox. Safe to run as several instances at once."""

    def __init__(
        self,
        backbone: Backbone,
        session_factory: async_sessionmaker[AsyncSession],
        producer: AIOKafkaProducer,
        listen_dsn: str | None = None,
        batch_size: int = 2000,
        poll_interval: float = 1.0,
        namespace: str = "",
    ) -> None:
        self.backbone = backbone
        self.session_factory = session_factory
        self.producer = producer
        self.listen_dsn = listen_dsn
        self.namespace = namespace
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self._wake = asyncio.Event()
        self._stopping = False
        table = f"{backbone.outbox.schema}.outbox"
        # ``= ANY(ARRAY(…))``: the claimed rows are deleted through the primary key (``IN (subquery)`` is
        # planned as a hash semi-join over a sequential scan of the whole table, once per batch)
        self._claim = (
            f"DELETE FROM {table} WHERE seq = ANY(ARRAY("
            f"SELECT seq FROM {table} ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED)) "
            "RETURNING seq, topic, key, headers::text, payload::text"
        )
        self._metrics_due = 0.0
        # Test hook: called after the batch is acknowledged by the broker, before the claim (the rows' deletion)
        # commits.
        self.after_publish: Callable[[int], Awaitable[None]] | None = None

    async def publish_batch(self) -> int:
        """Claim, publish and delete one batch. Returns how many rows were published.

        One statement claims and deletes the rows (``DELETE … WHERE seq = ANY(ARRAY(SELECT … FOR UPDATE SKIP
        LOCKED)) RETURNING``); the transaction stays open while the records are published and acknowledged, so a
        failed publish (or a crash) rolls the delete back and the rows are sent again later. Deleting rather than
        marking keeps the table as small as the backlog: a mark wrote a second version of every row (all its
        index entries too) and left the published rows behind for every claim to step over.
        """
        async with self.session_factory() as session, session.begin():
            raw = await driver_connection(session)
            rows = sorted(await raw.fetch(self._claim, self.batch_size))
            if not rows:
                return 0
            futures = await self._send_batched(rows)
            await asyncio.gather(*futures)
            if self.after_publish is not None:
                await self.after_publish(len(rows))
        OUTBOX_PUBLISHED.labels(self.backbone.service).inc(len(rows))
        return len(rows)

    async def _send_batched(self, rows: list[Any]) -> list[asyncio.Future[Any]]:
        """Hand the rows to the producer as ready-made record batches, one stream per partition.

        Partitions are chosen exactly as the producer's default partitioner would (murmur2 of the key, the
        USCC), so an enterprise's events keep their order; building batches directly skips the per-record
        future and bookkeeping of ``send()``, which dominated the relay's CPU.
        """
        by_partition: dict[tuple[str, int], list[Any]] = {}
        partitions: dict[str, list[int]] = {}
        for row in rows:
            topic = physical(row[1], self.namespace)
            if topic not in partitions:
                partitions[topic] = sorted(await self.producer.partitions_for(topic))
            key = row[2].encode()
            partition = partition_of(key, partitions[topic])
            by_partition.setdefault((topic, partition), []).append((key, row))
        futures: list[asyncio.Future[Any]] = []
        for (topic, partition), items in by_partition.items():
            batch = self.producer.create_batch()
            for key, row in items:
                headers = [(k, v.encode()) for k, v in loads(row[3]).items()]
                value = row[4].encode()
                if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                    futures.append(await self.producer.send_batch(batch, topic, partition=partition))
                    batch = self.producer.create_batch()
                    if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                        # larger than a whole batch: send it alone, the producer sizes a batch for it
                        futures.append(
                            await self.producer.send(topic, value=value, key=key, headers=headers, partition=partition)
                        )
            futures.append(await self.producer.send_batch(batch, topic, partition=partition))
        return futures

    async def drain(self) -> int:
        total = 0
        while (n := await self.publish_batch()) > 0:
            total += n
        return total

    async def refresh_metrics(self) -> None:
        ob = self.backbone.outbox
        async with self.session_factory() as session:
            count, oldest = (await session.execute(select(func.count(), func.min(ob.c.created_at)))).one()
        OUTBOX_PENDING.labels(self.backbone.service).set(count)
        age = (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
        OUTBOX_OLDEST_AGE.labels(self.backbone.service).set(age)

    async def _listen(self) -> asyncpg.Connection | None:
        if not self.listen_dsn:
            return None
        try:
            conn = await asyncpg.connect(self.listen_dsn)
            await conn.add_listener(self.backbone.notify_channel, lambda *_: self._wake.set())
            return conn
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("outbox LISTEN unavailable, polling only: %s", exc)
            return None

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        conn = await self._listen()
        backoff = 0.2
        try:
            while not self._stopping:
                self._wake.clear()
                try:
                    await self.drain()
                    if time.monotonic() >= self._metrics_due:  # a count over the table: once a second at most
                        await self.refresh_metrics()
                        self._metrics_due = time.monotonic() + 1.0
                    backoff = 0.2
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # broker or DB down: keep rows, back off, try again
                    log.warning("outbox relay error, retrying in %.1fs: %s", backoff, exc)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 10.0)
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
