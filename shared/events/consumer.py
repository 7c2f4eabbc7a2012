"""Idempotent event consumer: inbox keyed by (consumer, event id), explicit offsets, retries and a DLQ.

For each record, in partition order:
1. parse the CloudEvents envelope; a malformed record or an undeclared type goes to ``<topic>.dlq``;
2. types this consumer has no handler for are skipped;
3. one DB transaction per poll (each partition's records in order): the batch's inbox rows are COPYed (a
   redelivered event's row already exists: the unique key refuses the COPY, which is rolled back to its
   savepoint, and ``INSERT INTO inbox … ON CONFLICT DO NOTHING RETURNING`` runs instead, where no row →
   duplicate, skipped); each new event's handler applies its effect in the same transaction. A type with
   a *batch handler* has each run of consecutive new events of that type applied by one call (set-based SQL
   instead of a few statements per event: a re-evaluation job publishes 100,000 events at once); when a batch
   is retried event by event (below), its per-event handler applies them;
4. retryable failures (DB/broker connectivity) back off and retry without committing; non-retryable ones
   (payload validation, ``EventRejected``, integrity violations, anything failing ``max_attempts`` times)
   go to the DLQ with error headers, produced after the database commit (never from a transaction that may
   still roll back and be retried);
5. the offsets (``offset + 1``) are committed after the DB commit, only for partitions still assigned;
6. the next batch is fetched (and decoded) while one is applied; it is dropped and its partitions rewound if that
   one fails, and not applied but read again if the group rebalanced meanwhile. The cyclic collector is paused
   for each poll (``shared.gc_control``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.backbone import Backbone
from shared.context import correlation_id_var, event_id_var, uscc_var
from shared.db import driver_connection, insert_or_skip_conflicts
from shared.events.catalog import dlq_of, event_types
from shared.events.envelope import CloudEvent, EnvelopeError
from shared.events.kafka import broker_links, same_live_links
from shared.gc_control import collector_paused
from shared.metrics import (
    CONSUMER_LAG,
    EVENTS_DLQ,
    EVENTS_DUPLICATE,
    EVENTS_IGNORED,
    EVENTS_PROCESSED,
    EVENTS_RETRIED,
)

log = logging.getLogger(__name__)

_INBOX_COLUMNS = ("consumer", "event_id", "event_type")
OFFSETS_CHECK_INTERVAL = 5.0
"""Seconds: the committed offsets are asked for at least this often while batches flow (``_lost_by_the_broker``)."""

Handler = Callable[[AsyncSession, CloudEvent], Awaitable[None]]
BatchHandler = Callable[[AsyncSession, list[CloudEvent]], Awaitable[None]]
"""Applies consecutive new events of one type, in order, with the same effect as its per-event handler."""


class EventRejected(Exception):
    """A handler refuses an event for good (business rule); it goes to the DLQ."""


_RETRYABLE = (OperationalError, InterfaceError, OSError, TimeoutError, ConnectionError)
_NON_RETRYABLE = (ValidationError, EventRejected, IntegrityError, ValueError, KeyError, TypeError)


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, IntegrityError):
        return False
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, _RETRYABLE)


Batch = dict[TopicPartition, list[ConsumerRecord[Any, Any]]]
Outcome = tuple[CloudEvent, Handler] | str | None
"""A record's (event, handler) to apply, an error for the DLQ, or None for a type the consumer ignores."""
Fetched = tuple[Batch, list[Outcome]]
DeadLetter = tuple[ConsumerRecord[Any, Any], str, int]
"""A record for the DLQ, the reason and the attempts made."""


def _firsts(batch: Batch) -> dict[TopicPartition, int]:
    """The first offset of each partition's records in a fetched batch."""
    return {tp: messages[0].offset for tp, messages in batch.items() if messages}


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: EventConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: Any) -> None:
        # Wait for the in-flight batch to finish and commit before the partitions move.
        async with self.owner._lock:
            self.owner._generation += 1

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.owner._generation += 1


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
        batch_handlers: Mapping[str, BatchHandler] | None = None,
        max_batch: int = 2000,
    ) -> None:
        self.name = name
        self.max_batch = max_batch
        self.backbone = backbone
        self.session_factory = session_factory
        self.consumer = consumer
        self.producer = producer
        self.topics = topics
        self.handlers = dict(handlers)
        self.batch_handlers = dict(batch_handlers or {})
        missing = set(self.batch_handlers) - set(self.handlers)
        if missing:  # the per-event handler isolates a poison event when a batch fails
            raise ValueError(f"batch handlers without a per-event handler: {sorted(missing)}")
        self._inbox_insert = (
            f"INSERT INTO {backbone.inbox.schema}.inbox (consumer, event_id, event_type) "
            "SELECT $1, e, t FROM unnest($2::text[], $3::text[]) AS u(e, t) ON CONFLICT DO NOTHING RETURNING event_id"
        )
        self.max_attempts = max_attempts
        self.max_backoff = max_backoff
        self._lock = asyncio.Lock()
        self._stopping = False
        # the next batch, fetched while the current one is applied, and the assignment generation it was fetched in
        self._prefetch: tuple[asyncio.Future[Fetched], int] | None = None
        self._generation = 0  # bumped by every rebalance
        # The offsets this consumer committed, by partition: a partition it committed on whose committed offset is
        # gone before a batch is applied was lost by the broker (an in-memory broker restarted: topics recreated
        # empty), and its fetch position points into a new log. See _lost_by_the_broker.
        self._committed: dict[TopicPartition, int] = {}
        # When that check is due (``_offsets_check_due``): what it last saw of the connections and the assignment.
        self._checked_links: tuple[object, ...] | None = None
        self._checked_generation = -1
        self._checked_at = 0.0
        self._check_offsets = True  # set by a fetch or connection error
        self.processed = 0
        self.duplicates = 0
        self.dead_lettered = 0
        self._failures: dict[str, int] = {}

    def subscribe(self) -> None:
        self.consumer.subscribe(self.topics, listener=_Rebalance(self))

    def stop(self) -> None:
        self._stopping = True
        self._abandon_prefetch()

    def _abandon_prefetch(self) -> None:
        """Cancel the prefetch (its records, if any, are not committed: read again after a restart)."""
        if self._prefetch is None:
            return
        future, _ = self._prefetch
        self._prefetch = None
        if future.done():
            if not future.cancelled():
                future.exception()  # retrieved: a failed fetch is not reported as never retrieved
        else:
            future.cancel()

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

    async def _send_dead_letters(self, letters: list[DeadLetter]) -> None:
        """Produce the batch's dead letters, after its database commit (a transaction rolled back and retried
        would otherwise have produced them twice) and before its offsets are committed. The commit recorded the
        poison events in the inbox, so a redelivery would skip them: a failed send is retried here until it goes
        out, unless the consumer stops (then the offsets stay uncommitted)."""
        backoff = 0.2
        for msg, error, attempts in letters:
            while True:
                try:
                    await self._dead_letter(msg, error, attempts)
                    break
                except KafkaError as exc:
                    if self._stopping:
                        raise
                    log.warning("dead letter not produced (%s), retrying in %.1fs", exc, backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self.max_backoff)

    def _classify(self, msg: ConsumerRecord[Any, Any]) -> Outcome:
        """(event, handler) to apply, an error string for the DLQ, or None for a type this consumer ignores."""
        try:
            event = CloudEvent.from_kafka(msg.headers, msg.value)
        except EnvelopeError as exc:
            return f"envelope: {exc}"
        if event.type not in event_types():
            return f"unknown event type: {event.type}"
        handler = self.handlers.get(event.type)
        if handler is None:
            return None
        return event, handler

    async def _record_inbox(self, session: AsyncSession, unique: dict[str, str]) -> set[str]:
        """Write the inbox rows of the batch's events (id → type); returns the ids that are new. One COPY, the
        cheapest bulk insert, unless an id is in the inbox already (a redelivery): then the insert that skips those
        ids and returns the others (``insert_or_skip_conflicts``). A concurrent consumer holding the same id (a
        rebalance overlap) waits for the other transaction either way."""
        raw = await driver_connection(session)

        async def copy() -> set[str]:
            await raw.copy_records_to_table(
                "inbox", schema_name=self.backbone.inbox.schema, columns=_INBOX_COLUMNS,
                records=[(self.name, event_id, event_type) for event_id, event_type in unique.items()],
            )
            return set(unique)

        async def skipping() -> set[str]:
            return {r[0] for r in await raw.fetch(self._inbox_insert, self.name, list(unique), list(unique.values()))}

        return await insert_or_skip_conflicts(raw, copy, skipping)

    async def _apply_batch(
        self, items: list[tuple[ConsumerRecord[Any, Any], CloudEvent, Handler]], safe: bool
    ) -> tuple[int, int, list[DeadLetter]]:
        """One transaction for the batch: its inbox rows (``_record_inbox``), then each new event's handler.

        ``safe`` wraps each handler in a SAVEPOINT so a poison event is dead-lettered alone (its inbox row stays,
        so it is not retried); the fast path runs without savepoints and any failure makes the caller retry safely.
        Returns (applied, duplicates, the dead letters to produce once the transaction committed).
        """
        applied = duplicates = 0
        letters: list[DeadLetter] = []
        async with self.session_factory() as session, session.begin():
            unique = {ev.id: ev.type for _, ev, _ in items}
            fresh = await self._record_inbox(session, unique)
            run: list[CloudEvent] = []  # consecutive new events of one batch-handled type

            async def flush() -> None:
                nonlocal applied
                if run:
                    await self.batch_handlers[run[0].type](session, run)
                    applied += len(run)
                    run.clear()

            for msg, event, handler in items:
                if event.id not in fresh:
                    duplicates += 1
                    continue
                fresh.discard(event.id)
                if not safe and event.type in self.batch_handlers:
                    if run and run[0].type != event.type:
                        await flush()
                    run.append(event)
                    continue
                await flush()
                event_id_var.set(event.id)
                correlation_id_var.set(event.correlationid or event.id)
                uscc_var.set(event.subject)
                if not safe:
                    await handler(session, event)
                    applied += 1
                    continue
                try:
                    async with session.begin_nested():
                        await handler(session, event)
                    applied += 1
                except Exception as exc:
                    if is_retryable(exc):
                        raise
                    if not isinstance(exc, _NON_RETRYABLE):
                        self._failures[event.id] = self._failures.get(event.id, 0) + 1
                        if self._failures[event.id] < self.max_attempts:
                            raise
                    attempts = self._failures.pop(event.id, 1)
                    letters.append((msg, f"{type(exc).__name__}: {exc}", attempts))
            await flush()
        return applied, duplicates, letters

    async def process_batch(
        self, messages: list[ConsumerRecord[Any, Any]], classified: list[Outcome] | None = None
    ) -> None:
        """Apply records (each partition's in order) in one transaction; exactly once per event id.
        ``classified``: their ``_classify`` outcomes, when the fetch worked them out already."""
        items: list[tuple[ConsumerRecord[Any, Any], CloudEvent, Handler]] = []
        rejected: list[DeadLetter] = []  # malformed envelopes, undeclared types
        outcomes = classified if classified is not None else [self._classify(msg) for msg in messages]
        for msg, outcome in zip(messages, outcomes, strict=True):
            if isinstance(outcome, str):
                rejected.append((msg, outcome, 1))
            elif outcome is None:
                EVENTS_IGNORED.labels(self.name).inc()
            else:
                items.append((msg, *outcome))
        if not items:
            await self._send_dead_letters(rejected)
            return
        safe = False
        backoff = 0.1
        while True:
            try:
                applied, duplicates, letters = await self._apply_batch(items, safe)
                break
            except Exception as exc:
                if is_retryable(exc):
                    if self._stopping:
                        raise  # leave the offsets uncommitted: redelivery follows, the inbox absorbs it
                    EVENTS_RETRIED.labels(self.name).inc()
                    log.warning("retryable error, retrying batch in %.1fs: %s", backoff, exc)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self.max_backoff)
                elif not safe:
                    safe = True  # isolate the failing event with savepoints
                else:
                    EVENTS_RETRIED.labels(self.name).inc()
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self.max_backoff)
        await self._send_dead_letters(rejected + letters)
        self.processed += applied
        self.duplicates += duplicates
        for event_type, n in Counter(event.type for _, event, _ in items[:applied]).items():
            EVENTS_PROCESSED.labels(self.name, event_type).inc(n)
        if duplicates:
            EVENTS_DUPLICATE.labels(self.name).inc(duplicates)

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        assigned = self.consumer.assignment()
        live = {tp: off for tp, off in offsets.items() if tp in assigned}
        if not live:
            return
        try:
            await self.consumer.commit(live)
        except CommitFailedError as exc:  # rebalanced meanwhile: the inbox absorbs redelivery
            log.warning("offset commit failed after rebalance: %s", exc)
        else:
            self._committed.update(live)

    def _offsets_check_due(self) -> bool:
        """Whether the committed offsets must be asked for before this batch: the broker can only have lost them
        (restarted) if a connection to it broke meanwhile, so the round trip is made after a connection was
        closed or replaced, a fetch or connection error, a rebalance, and otherwise at most every
        ``OFFSETS_CHECK_INTERVAL`` seconds (it cost a round trip before each of a re-evaluation's batches)."""
        return (self._check_offsets or self._generation != self._checked_generation
                or time.monotonic() - self._checked_at >= OFFSETS_CHECK_INTERVAL
                or not same_live_links(self.consumer, self._checked_links))

    async def _lost_by_the_broker(self, partitions: Iterable[TopicPartition]) -> list[TopicPartition]:
        """The partitions among ``partitions`` whose committed offset the broker lost.

        A broker that lost its state (Tansu keeps everything in memory; a restart recreates the topics empty) keeps
        no group offsets either, while this consumer still holds fetch positions into the old logs: once a new log
        has grown past such a position, a fetch from it skips every record before it (seen in the chaos run: 118
        of 240 registrations never reached evaluation). So before a batch is applied, a partition this consumer
        committed on is checked to still have a committed offset (one round trip, the partitions at once) when
        the check is due (``_offsets_check_due``: a restart breaks the connections, and batches fetched over
        the same live connections as the last check come from the same broker)."""
        mine = [tp for tp in partitions if self._committed.get(tp, 0) > 0]
        if not mine or not self._offsets_check_due():
            return []
        generation = self._generation
        self._check_offsets = False
        try:
            committed = await asyncio.gather(*(self.consumer.committed(tp) for tp in mine))
        except BaseException:
            self._check_offsets = True
            raise
        # the connections after the round trip (it may open one): one that breaks later shows as not connected
        self._checked_links = broker_links(self.consumer)
        self._checked_generation, self._checked_at = generation, time.monotonic()
        return [tp for tp, offset in zip(mine, committed, strict=True) if offset is None]

    async def poll_once(self, timeout_ms: int = 500, max_records: int | None = None) -> int:
        """Fetch a batch, apply it, commit its offsets. The cyclic collector is paused meanwhile
        (``shared.gc_control``): the batch's records, events, payloads and rows, and the next batch's, all live until
        the poll ends, and every collection walked them all again (in the re-evaluation bench the registry's
        collections took 0.62 s of its ~3 s of CPU, 0.09 s paused so); it runs between polls."""
        with collector_paused():
            return await self._poll(timeout_ms, max_records or self.max_batch)

    async def _poll(self, timeout_ms: int, max_records: int) -> int:
        batch, classified = await self._next_batch(timeout_ms, max_records)
        count = 0
        async with self._lock:
            # The fetch position is already past the whole batch: if anything fails (or we stop) midway, rewind
            # each partition to its first unprocessed record, or those records would be skipped until a restart.
            pending = _firsts(batch)
            try:
                if pending and (lost := await self._lost_by_the_broker(pending)):
                    # Read from stale positions into logs the broker recreated: nothing of it is applied; the lost
                    # partitions are read again from the start (the inbox skips what was applied), the rest rewound.
                    for tp in lost:
                        log.warning("the broker lost the committed offset of %s (was %d): re-reading it from the "
                                    "start", tp, self._committed.pop(tp))
                        pending[tp] = 0
                    return 0
                if pending and not self._stopping:
                    # The next batch is fetched and decoded while this one is applied (which mostly waits on the
                    # database); it is dropped, and its partitions rewound, if this one fails.
                    self._prefetch = (asyncio.ensure_future(self._fetch(timeout_ms, max_records)), self._generation)
                    # every partition's records in one transaction (each partition's in its order): one inbox
                    # insert and one commit per poll, and the longest runs for batch handlers
                    await self.process_batch([m for tp in pending for m in batch[tp]], classified)
                    offsets = {tp: batch[tp][-1].offset + 1 for tp in pending}
                    pending = {}
                    count = sum(len(batch[tp]) for tp in offsets)
                    await self._commit(offsets)
                    for tp, next_offset in offsets.items():
                        with contextlib.suppress(Exception):
                            hw = self.consumer.highwater(tp)
                            if hw is not None:
                                CONSUMER_LAG.labels(self.name, tp.topic, tp.partition).set(max(0, hw - next_offset))
            finally:
                if pending:
                    await self._drop_prefetch()  # (rewinds its partitions first: this batch's offsets come earlier)
                self._rewind(pending)
        return count

    async def _fetch(self, timeout_ms: int, max_records: int) -> Fetched:
        """A batch, and the ``_classify`` outcome of each of its records (in the order they are applied)."""
        batch: Batch = await self.consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        return batch, [self._classify(m) for messages in batch.values() for m in messages]

    async def _next_batch(self, timeout_ms: int, max_records: int) -> Fetched:
        """The prefetched batch if there is one, else a fresh fetch. A batch fetched before a rebalance is not
        used: its partitions may have moved; those still assigned are rewound to where it began."""
        if self._prefetch is None:
            return await self._fetch(timeout_ms, max_records)
        future, generation = self._prefetch
        self._prefetch = None
        fetched = await future
        if generation != self._generation:
            self._rewind(_firsts(fetched[0]))
            return {}, []
        return fetched

    async def _drop_prefetch(self) -> None:
        """Drop the prefetched batch (after a failed or abandoned one), rewinding its partitions."""
        if self._prefetch is None:
            return
        future, _ = self._prefetch
        self._prefetch = None
        await asyncio.wait([future])
        if not future.cancelled() and future.exception() is None:
            self._rewind(_firsts(future.result()[0]))

    def _rewind(self, pending: Mapping[TopicPartition, int]) -> None:
        assigned = self.consumer.assignment()
        for tp, offset in pending.items():
            if tp in assigned:
                with contextlib.suppress(Exception):
                    self.consumer.seek(tp, offset)

    async def run(self) -> None:
        backoff = 0.2
        try:
            while not self._stopping:
                try:
                    await self.poll_once()
                    backoff = 0.2
                except asyncio.CancelledError:
                    raise
                except (KafkaError, OSError, OperationalError) as exc:
                    self._check_offsets = True  # the broker may have restarted: ask for the offsets again
                    log.warning("consumer %s error, retrying in %.1fs: %s", self.name, backoff, exc)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self.max_backoff)
        finally:
            self._abandon_prefetch()
