"""Idempotent event consumer: inbox keyed by (consumer, event id), explicit offsets, retries and a DLQ.

For each record, in partition order:
1. parse the CloudEvents envelope; a malformed record or an undeclared type goes to ``<topic>.dlq``;
2. types this consumer has no handler for are skipped;
3. one DB transaction: ``INSERT INTO inbox … ON CONFLICT DO NOTHING RETURNING``; no row → duplicate,
   skipped; otherwise the handler applies the effect in the same transaction;
4. retryable failures (DB/broker connectivity) back off and retry without committing; non-retryable ones
   (payload validation, ``EventRejected``, integrity violations, anything failing ``max_attempts`` times)
   go to the DLQ with error headers;
5. the offset (``offset + 1``) is committed after the DB commit, only for partitions still assigned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.backbone import Backbone
from shared.context import correlation_id_var, event_id_var
from shared.events.catalog import EVENT_TYPES, dlq_of
from shared.events.envelope import CloudEvent, EnvelopeError
from shared.metrics import (
    CONSUMER_LAG,
    EVENTS_DLQ,
    EVENTS_DUPLICATE,
    EVENTS_IGNORED,
    EVENTS_PROCESSED,
    EVENTS_RETRIED,
)

log = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, CloudEvent], Awaitable[None]]


class EventRejected(Exception):
    """A handler refuses an event for good (business rule); it goes to the DLQ."""


_RETRYABLE = (OperationalError, InterfaceError, OSError, TimeoutError, ConnectionError)


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, IntegrityError):
        return False
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, _RETRYABLE)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, lock: asyncio.Lock) -> None:
        self.lock = lock

    async def on_partitions_revoked(self, revoked: Any) -> None:
        # Wait for the in-flight batch to finish and commit before the partitions move.
        async with self.lock:
            pass

    async def on_partitions_assigned(self, assigned: Any) -> None:
        return None


class EventConsumer:
    def __init__(
        self,
        name: str,
        backbone: Backbone,
        session_factory: async_sessionmaker[AsyncSession],
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        topics: list[str],
        handlers: Mapping[str, Handler],
        max_attempts: int = 3,
        max_backoff: float = 10.0,
    ) -> None:
        self.name = name
        self.backbone = backbone
        self.session_factory = session_factory
        self.consumer = consumer
        self.producer = producer
        self.topics = topics
        self.handlers = dict(handlers)
        self.max_attempts = max_attempts
        self.max_backoff = max_backoff
        self._lock = asyncio.Lock()
        self._stopping = False
        self.processed = 0
        self.duplicates = 0
        self.dead_lettered = 0

    def subscribe(self) -> None:
        self.consumer.subscribe(self.topics, listener=_Rebalance(self._lock))

    def stop(self) -> None:
        self._stopping = True

    async def _dead_letter(self, msg: ConsumerRecord[Any, Any], error: str, attempts: int) -> None:
        headers = [
            *(msg.headers or ()),
            ("dlq_original_topic", msg.topic.encode()),
            ("dlq_original_partition", str(msg.partition).encode()),
            ("dlq_original_offset", str(msg.offset).encode()),
            ("dlq_consumer", self.name.encode()),
            ("dlq_error", error[:2000].encode()),
            ("dlq_attempts", str(attempts).encode()),
        ]
        await self.producer.send_and_wait(dlq_of(msg.topic), value=msg.value, key=msg.key, headers=headers)
        EVENTS_DLQ.labels(self.name, msg.topic).inc()
        self.dead_lettered += 1
        log.error("event dead-lettered", extra={"topic": msg.topic, "offset": msg.offset, "error": error})

    async def _apply(self, event: CloudEvent, handler: Handler) -> bool:
        ib = self.backbone.inbox
        async with self.session_factory() as session, session.begin():
            inserted = await session.execute(
                insert(ib)
                .values(consumer=self.name, event_id=event.id, event_type=event.type)
                .on_conflict_do_nothing()
                .returning(ib.c.event_id)
            )
            if inserted.first() is None:
                return False
            await handler(session, event)
        return True

    async def process(self, msg: ConsumerRecord[Any, Any]) -> None:
        try:
            event = CloudEvent.from_kafka(msg.headers, msg.value)
        except EnvelopeError as exc:
            await self._dead_letter(msg, f"envelope: {exc}", 1)
            return
        if event.type not in EVENT_TYPES:
            await self._dead_letter(msg, f"unknown event type: {event.type}", 1)
            return
        handler = self.handlers.get(event.type)
        if handler is None:
            EVENTS_IGNORED.labels(self.name).inc()
            return
        event_id_var.set(event.id)
        correlation_id_var.set(event.correlationid or event.id)
        attempts = 0
        backoff = 0.1
        while True:
            attempts += 1
            try:
                applied = await self._apply(event, handler)
            except (ValidationError, EventRejected, IntegrityError, ValueError, KeyError, TypeError) as exc:
                await self._dead_letter(msg, f"{type(exc).__name__}: {exc}", attempts)
                return
            except Exception as exc:
                if is_retryable(exc) and not self._stopping:
                    EVENTS_RETRIED.labels(self.name).inc()
                    log.warning("retryable error on %s, retrying in %.1fs: %s", event.id, backoff, exc)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self.max_backoff)
                    continue
                if is_retryable(exc):
                    raise  # stopping: leave the offset uncommitted, redelivery will follow
                if attempts < self.max_attempts:
                    EVENTS_RETRIED.labels(self.name).inc()
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self.max_backoff)
                    continue
                await self._dead_letter(msg, f"{type(exc).__name__}: {exc}", attempts)
                return
            if applied:
                self.processed += 1
                EVENTS_PROCESSED.labels(self.name, event.type).inc()
            else:
                self.duplicates += 1
                EVENTS_DUPLICATE.labels(self.name).inc()
            return

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        assigned = self.consumer.assignment()
        live = {tp: off for tp, off in offsets.items() if tp in assigned}
        if not live:
            return
        try:
            await self.consumer.commit(live)
        except CommitFailedError as exc:  # rebalanced meanwhile: the inbox absorbs redelivery
            log.warning("offset commit failed after rebalance: %s", exc)

    async def poll_once(self, timeout_ms: int = 500, max_records: int = 500) -> int:
        batch = await self.consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        count = 0
        async with self._lock:
            for tp, messages in batch.items():
                last: int | None = None
                for msg in messages:
                    if self._stopping:
                        break
                    await self.process(msg)
                    last = msg.offset
                    count += 1
                if last is not None:
                    await self._commit({tp: last + 1})
                    with contextlib.suppress(Exception):
                        hw = self.consumer.highwater(tp)
                        if hw is not None:
                            CONSUMER_LAG.labels(self.name, tp.topic, tp.partition).set(max(0, hw - last - 1))
        return count

    async def run(self) -> None:
        backoff = 0.2
        while not self._stopping:
            try:
                await self.poll_once()
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except (KafkaError, OSError, OperationalError) as exc:
                log.warning("consumer %s error, retrying in %.1fs: %s", self.name, backoff, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
