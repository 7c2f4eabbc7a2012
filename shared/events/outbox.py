"""Transactional outbox: ``emit`` writes the event in the caller's transaction; ``OutboxRelay`` publishes.

The relay claims unpublished rows with ``SELECT … FOR UPDATE SKIP LOCKED`` under a per-service advisory lock
(so relays never publish the same row, nor one key's rows out of order), checks their topics, publishes with
acks=all, deletes them and commits. A crash between publish and commit republishes the rows: consumers absorb
that with their inbox. It wakes on LISTEN/NOTIFY and polls as a fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import InvalidTopicError, MessageSizeTooLargeError, UnsupportedForMessageFormatError
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.backbone import Backbone
from shared.context import traceparent_var
from shared.db import driver_connection
from shared.events.catalog import event_types, physical, topic_of
from shared.events.encoder import (
    OUTBOX_COLUMNS,
    current_correlation,
    dataschema_of,
    envelope_headers,
    source_of,
    wake_relay,
)
from shared.events.envelope import dumps_text, loads
from shared.events.kafka import TopicGuard
from shared.events.partitioning import partition_of
from shared.ids import uuid7
from shared.metrics import OUTBOX_OLDEST_AGE, OUTBOX_PARKED, OUTBOX_PENDING, OUTBOX_PUBLISHED

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
    if event_type not in event_types():
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


# Errors that a row itself causes (it can never be published as it is): such a row gets ``attempts`` + 1 and its
# ``last_error``, and is parked once ``attempts`` reaches the relay's limit. Anything else (broker or database
# unreachable, timeouts, a topic not ready) holds the rows and is retried without counting.
_POISON = (
    MessageSizeTooLargeError, InvalidTopicError, UnsupportedForMessageFormatError, ValueError, TypeError,
    AttributeError, LookupError, UnicodeError,
)


def is_poison(exc: BaseException) -> bool:
    return isinstance(exc, _POISON)


class _Poisoned(Exception):
    """The batch failed because of a row (rolls the claim back; the relay then publishes the rows one by one)."""


def _lock_key(name: str) -> int:
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


class OutboxRelay:
    """Publishes a service's outbox. Several instances may run at once: a PostgreSQL advisory lock per service,
    held by the batch's transaction, lets one publish at a time, so one enterprise's events keep their order.

    - topics: before a batch goes out, ``guard`` checks its topics exist with the declared partitions and creates
      missing ones; after the acknowledgement it checks they are still there (a broker restart in between sends
      the batch again); a topic with other partitions holds the rows (``TopicsNotReady``);
    - poison rows: a batch failing because of a row is published row by row; a row that fails gets ``attempts``
      + 1 and its ``last_error`` and, once ``attempts`` reaches ``max_attempts``, is parked (left out of the claim,
      shown by ``parked_rows`` and ``GET /api/v1/admin/outbox/parked``) while the rest flow on; a key's later rows
      wait while its earlier row is failing, until that row is parked;
    - stopping (``stop()``): the batch in flight finishes (or rolls back when cancelled); nothing else starts.
    """

    def __init__(
        self,
        backbone: Backbone,
        session_factory: async_sessionmaker[AsyncSession],
        producer: AIOKafkaProducer,
        listen_dsn: str | None = None,
        batch_size: int = 2000,
        poll_interval: float = 1.0,
        namespace: str = "",
        guard: TopicGuard | None = None,
        max_attempts: int = 5,
    ) -> None:
        self.backbone = backbone
        self.session_factory = session_factory
        self.producer = producer
        self.listen_dsn = listen_dsn
        self.namespace = namespace
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.guard = guard
        self.max_attempts = max_attempts
        self._wake = asyncio.Event()
        self._stopping = False
        self._max_record: int = getattr(producer, "_max_request_size", 1048576)
        self._lock = _lock_key(f"zjtx_outbox_relay:{backbone.outbox.schema}")
        table = f"{backbone.outbox.schema}.outbox"
        self._table = table
        # ``= ANY(ARRAY(…))``: the claimed rows are deleted through the primary key (``IN (subquery)`` is
        # planned as a hash semi-join over a sequential scan of the whole table, once per batch)
        self._claim = (
            f"DELETE FROM {table} WHERE seq = ANY(ARRAY("
            f"SELECT seq FROM {table} WHERE attempts < $2 ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED)) "
            "RETURNING seq, topic, key, headers::text, payload::text"
        )
        self._claim_rows = (
            f"SELECT seq, topic, key, headers::text, payload::text, attempts FROM {table} "
            "WHERE attempts < $2 ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED"
        )
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
        try:
            async with self.session_factory() as session, session.begin():
                raw = await driver_connection(session)
                await raw.execute("SELECT pg_advisory_xact_lock($1)", self._lock)
                rows = sorted(await raw.fetch(self._claim, self.batch_size, self.max_attempts))
                if not rows:
                    return 0
                topics = {r[1] for r in rows}
                partitions = await self._topics(topics)
                try:
                    futures = await self._send_batched(rows, partitions)
                    await asyncio.gather(*futures)
                except Exception as exc:
                    if is_poison(exc):
                        raise _Poisoned(f"{type(exc).__name__}: {exc}") from exc
                    raise
                await self._topics(topics, create=False)
                if self.after_publish is not None:
                    await self.after_publish(len(rows))
        except _Poisoned as exc:
            log.warning("outbox batch refused because of a row, publishing row by row: %s", exc)
            return await self._publish_one_by_one()
        except BaseException:
            if self.guard is not None:
                self.guard.forget()  # the topics are read again before the next batch
            raise
        OUTBOX_PUBLISHED.labels(self.backbone.service).inc(len(rows))
        return len(rows)

    async def _topics(self, logical: set[str], create: bool = True) -> dict[str, list[int]]:
        """Each physical topic's partitions: checked by the guard when there is one."""
        names = {physical(t, self.namespace) for t in logical}
        if self.guard is not None:
            return await self.guard.check(self.producer, names, create=create)
        return {t: sorted(await self.producer.partitions_for(t)) for t in names}

    async def _publish_one_by_one(self) -> int:
        """Publish the next rows one at a time: a row that fails for its own sake is counted (and parked at the
        limit), the others go out and are deleted; a transient failure stops the pass (what was published is
        still deleted)."""
        published: list[int] = []
        blocked: set[str] = set()  # keys with a failing row: their later rows wait (per-key order)
        async with self.session_factory() as session, session.begin():
            raw = await driver_connection(session)
            await raw.execute("SELECT pg_advisory_xact_lock($1)", self._lock)
            for row in await raw.fetch(self._claim_rows, self.batch_size, self.max_attempts):
                seq, topic, key, _, _, attempts = row
                if key in blocked:
                    continue
                try:
                    partitions = await self._topics({topic})
                    await asyncio.gather(*await self._send_batched([row], partitions))
                except Exception as exc:
                    if not is_poison(exc):
                        log.warning("outbox relay: publishing stopped by %s", exc)
                        break
                    error = f"{type(exc).__name__}: {exc}"[:2000]
                    await raw.execute(
                        f"UPDATE {self._table} SET attempts = attempts + 1, last_error = $2 WHERE seq = $1", seq, error
                    )
                    if attempts + 1 >= self.max_attempts:
                        log.error("outbox row parked after %d attempts", attempts + 1,
                                  extra={"seq": seq, "topic": topic, "key": key, "error": error})
                    blocked.add(key)
                    continue
                published.append(seq)
            if published:
                await raw.execute(f"DELETE FROM {self._table} WHERE seq = ANY($1::bigint[])", published)
        OUTBOX_PUBLISHED.labels(self.backbone.service).inc(len(published))
        return len(published)

    async def _send_batched(self, rows: list[Any], partitions: dict[str, list[int]]) -> list[asyncio.Future[Any]]:
        """Hand the rows to the producer as ready-made record batches, one stream per partition.

        Partitions are chosen exactly as the producer's default partitioner would (murmur2 of the key, the
        USCC), so an enterprise's events keep their order; building batches directly skips the per-record
        future and bookkeeping of ``send()``, which dominated the relay's CPU.
        """
        by_partition: dict[tuple[str, int], list[Any]] = {}
        for row in rows:
            topic = physical(row[1], self.namespace)
            key = row[2].encode()
            partition = partition_of(key, partitions[topic])
            by_partition.setdefault((topic, partition), []).append((key, row))
        futures: list[asyncio.Future[Any]] = []
        for (topic, partition), items in by_partition.items():
            batch = self.producer.create_batch()
            for key, row in items:
                headers = [(k, v.encode()) for k, v in loads(row[3]).items()]
                value = row[4].encode()
                if len(value) > self._max_record:  # an empty batch takes any record: refuse it as Kafka would
                    raise MessageSizeTooLargeError(f"record of {len(value)} bytes, limit {self._max_record}")
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
        """Publish until the outbox holds no publishable row (or the relay is stopping)."""
        total = 0
        while not self._stopping and (n := await self.publish_batch()) > 0:
            total += n
        return total

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
        """Finish the batch in flight, start no other."""
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
                    backoff = 0.2
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # broker or DB down, topics not ready: keep rows, back off, try again
                    log.warning("outbox relay error, retrying in %.1fs: %s", backoff, exc)
                    with contextlib.suppress(TimeoutError):  # a stop wakes it at once
                        await asyncio.wait_for(self._wake.wait(), timeout=backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()


async def outbox_backlog(
    session_factory: async_sessionmaker[AsyncSession], backbone: Backbone, max_attempts: int = 5
) -> tuple[int, float, int]:
    """(pending rows, age in seconds of the oldest pending row, parked rows), read from the table."""
    ob = backbone.outbox
    parked = ob.c.attempts >= max_attempts
    async with session_factory() as session:
        pending, oldest, n_parked = (await session.execute(select(
            func.count().filter(~parked), func.min(ob.c.created_at).filter(~parked), func.count().filter(parked),
        ))).one()
    age = (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
    return int(pending), age, int(n_parked)


async def refresh_metrics(
    session_factory: async_sessionmaker[AsyncSession], backbone: Backbone, max_attempts: int = 5
) -> tuple[int, float, int]:
    """Set ``outbox_pending_rows``, ``outbox_oldest_pending_age_seconds`` and ``outbox_parked_rows`` from the
    table (whatever the relay or the broker is doing)."""
    pending, age, parked = await outbox_backlog(session_factory, backbone, max_attempts)
    OUTBOX_PENDING.labels(backbone.service).set(pending)
    OUTBOX_OLDEST_AGE.labels(backbone.service).set(age)
    OUTBOX_PARKED.labels(backbone.service).set(parked)
    return pending, age, parked


async def parked_rows(
    session_factory: async_sessionmaker[AsyncSession], backbone: Backbone, max_attempts: int = 5, limit: int = 100
) -> list[dict[str, Any]]:
    """The parked rows, oldest first: what they are and why they could not be published."""
    ob = backbone.outbox
    query = (
        select(ob.c.seq, ob.c.event_id, ob.c.type, ob.c.topic, ob.c.key, ob.c.created_at, ob.c.attempts,
               ob.c.last_error)
        .where(ob.c.attempts >= max_attempts).order_by(ob.c.seq).limit(limit)
    )
    async with session_factory() as session:
        return [dict(r._mapping) for r in await session.execute(query)]
