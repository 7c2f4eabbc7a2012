"""What a running service holds: settings, engine, sessions, Kafka clients, relay, consumer, workers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.backbone import Backbone
from shared.db import asyncpg_dsn, create_engine, make_session_factory
from shared.db_reads import ReadPool
from shared.events.catalog import ALL_TOPICS, physical
from shared.events.consumer import BatchHandler, EventConsumer, Handler
from shared.events.kafka import TopicGuard, make_consumer, make_producer, provision_topics
from shared.events.outbox import OutboxRelay, refresh_metrics
from shared.gc_control import freeze_survivors
from shared.memory import trim_when_quiet
from shared.settings import Settings

log = logging.getLogger(__name__)

Worker = Callable[["ServiceRuntime"], Coroutine[Any, Any, None]]
OUTBOX_MAX_ATTEMPTS = 5
"""Publish attempts after which an outbox row that fails for its own sake is parked."""


@dataclass
class ServiceSpec:
    """What a service declares about itself; ``services/<name>/main.py`` builds one."""

    name: str
    title: str
    description: str
    backbone: Backbone
    subscribe: list[str] = field(default_factory=list)
    handlers: Mapping[str, Handler] = field(default_factory=dict)
    batch_handlers: Mapping[str, BatchHandler] = field(default_factory=dict)
    workers: list[Worker] = field(default_factory=list)
    # Most records the consumer applies in one poll, if fewer than ``Settings.kafka_max_batch``: a service whose
    # every event is heavy work gains nothing from long batches, and each batch's objects live until its commit.
    max_batch: int | None = None


def consumer_batch(spec: ServiceSpec, settings: Settings) -> int:
    """Records per poll: the service's own bound where it declares one, never above ``kafka_max_batch``."""
    return min(spec.max_batch or settings.kafka_max_batch, settings.kafka_max_batch)


@dataclass
class ServiceRuntime:
    spec: ServiceSpec
    settings: Settings
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    producer: AIOKafkaProducer | None = None
    relay: OutboxRelay | None = None
    consumer: EventConsumer | None = None
    kafka_ready: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    reads: ReadPool | None = None  # hot reads without a session (shared.db_reads); opens on first use

    @classmethod
    def build(cls, spec: ServiceSpec, settings: Settings) -> ServiceRuntime:
        engine = create_engine(settings.database_url, settings.db_pool_size)
        return cls(spec=spec, settings=settings, engine=engine, session_factory=make_session_factory(engine),
                   reads=ReadPool(asyncpg_dsn(settings.database_url), settings.db_read_pool_size))

    async def _start_kafka(self) -> None:
        """Connect to the broker, retrying until it answers; the HTTP API works meanwhile."""
        backoff = 0.2
        while not self.stopping.is_set():
            producer = make_producer(self.settings)
            try:
                await provision_topics(
                    self.settings, [physical(t, self.settings.topic_namespace) for t in ALL_TOPICS], attempts=1
                )
                await producer.start()
            except Exception as exc:
                with contextlib.suppress(Exception):
                    await producer.stop()
                log.warning("broker unavailable (%s); retrying in %.1fs", exc, backoff)
                with contextlib.suppress(TimeoutError):  # wakes at once on shutdown
                    await asyncio.wait_for(self.stopping.wait(), timeout=backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if self.stopping.is_set():
                with contextlib.suppress(Exception):
                    await producer.stop()
                return
            self.producer = producer
            self.kafka_ready.set()
            return

    async def _await_kafka(self) -> bool:
        """Wait until the broker is connected; False if the service is stopping first."""
        ready = asyncio.ensure_future(self.kafka_ready.wait())
        stopping = asyncio.ensure_future(self.stopping.wait())
        try:
            await asyncio.wait({ready, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
            stopping.cancel()
        return self.kafka_ready.is_set() and not self.stopping.is_set()

    async def _run_relay(self) -> None:
        if not await self._await_kafka():
            return
        assert self.producer is not None
        self.relay = OutboxRelay(
            self.spec.backbone,
            self.session_factory,
            self.producer,
            listen_dsn=asyncpg_dsn(self.settings.database_url),
            namespace=self.settings.topic_namespace,
            guard=TopicGuard.from_settings(self.settings),
            max_attempts=OUTBOX_MAX_ATTEMPTS,
        )
        await self.relay.run()

    async def _watch_outbox(self) -> None:
        """The outbox backlog in ``/metrics``, read from the table every second (also while the broker is down
        or the relay not running)."""
        while not self.stopping.is_set():
            try:
                await refresh_metrics(self.session_factory, self.spec.backbone, OUTBOX_MAX_ATTEMPTS)
            except Exception as exc:  # database down: readyz says so; try again
                log.debug("outbox metrics unavailable: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=1.0)

    async def broker_status(self, within: float = 2.0) -> str:
        """``ok`` if the broker answers a metadata request now (not merely: it was connected once)."""
        if not (self.settings.run_relay or self.settings.run_consumer):
            return "ok"  # this process does not use the broker
        if self.producer is None or not self.kafka_ready.is_set():
            return "connecting"
        try:
            await asyncio.wait_for(self.producer.client.fetch_all_metadata(), within)
        except Exception as exc:
            return f"down: {type(exc).__name__}"
        return "ok"

    async def _run_consumer(self) -> None:
        if not await self._await_kafka():
            return
        assert self.producer is not None
        kafka_consumer: AIOKafkaConsumer = make_consumer(self.settings, f"zjtx-{self.spec.name}")
        self.consumer = EventConsumer(
            f"zjtx-{self.spec.name}",
            self.spec.backbone,
            self.session_factory,
            kafka_consumer,
            self.producer,
            [physical(t, self.settings.topic_namespace) for t in self.spec.subscribe],
            self.spec.handlers,
            batch_handlers=self.spec.batch_handlers,
            max_batch=consumer_batch(self.spec, self.settings),
        )
        self.consumer.subscribe()
        await kafka_consumer.start()
        try:
            await self.consumer.run()
        finally:
            with contextlib.suppress(Exception):
                await kafka_consumer.stop()

    async def start(self) -> None:
        s = self.settings
        self.tasks.append(asyncio.create_task(self._watch_outbox(), name="outbox-metrics"))
        if s.run_relay or (s.run_consumer and self.spec.subscribe):
            self.tasks.append(asyncio.create_task(self._start_kafka(), name="kafka-connect"))
        if s.run_relay:
            self.tasks.append(asyncio.create_task(self._run_relay(), name="outbox-relay"))
        if s.run_consumer and self.spec.subscribe:
            self.tasks.append(asyncio.create_task(self._run_consumer(), name="consumer"))
        if s.run_consumer:
            for worker in self.spec.workers:
                self.tasks.append(asyncio.create_task(worker(self), name=getattr(worker, "__name__", "worker")))
        if s.malloc_trim:
            self.tasks.append(asyncio.create_task(trim_when_quiet(self.stopping), name="malloc-trim"))
        if s.gc_freeze:
            freeze_survivors()

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Graceful: stop fetching, let the in-flight batch finish, stop clients, close the pool."""
        self.stopping.set()
        if self.consumer:
            self.consumer.stop()
        if self.relay:
            self.relay.stop()
        if self.tasks:
            _, pending = await asyncio.wait(self.tasks, timeout=grace_seconds)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self.producer:
            with contextlib.suppress(Exception):
                await self.producer.stop()
        if self.reads is not None:
            await self.reads.close()
        await self.engine.dispose()
