"""Helpers for the backbone tests: a throwaway schema with its own Backbone and ``effects`` table, a
private topic per test (so nothing leaks into the services' topics), a handler that records effects, a
full-topic reader and a small asyncio TCP proxy for broker outages."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pydantic import Field
from sqlalchemy import Column, MetaData, String, Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.backbone import Backbone
from shared.db import make_session_factory
from shared.events.catalog import dlq_of, topic_of
from shared.events.consumer import BatchHandler, EventConsumer, Handler
from shared.events.envelope import CloudEvent, EventReader
from shared.events.kafka import make_consumer, provision_topics
from shared.settings import Settings
from tests.harness import engine_for, settings, unique_group

REGISTERED = "zjtx.registry.enterprise.registered.v1"
UPDATED = "zjtx.registry.enterprise.updated.v1"


def new_uscc() -> str:
    return "91330100" + uuid.uuid4().hex[:10].upper()


class Registered(EventReader):
    """Consumer-side model of the test payload: ``uscc`` is required."""

    uscc: str = Field(min_length=18, max_length=18, description="统一社会信用代码")


@dataclass
class Scratch:
    """A throwaway schema holding a producing and a consuming backbone plus an ``effects`` table."""

    schema: str
    engine: AsyncEngine
    sf: async_sessionmaker[AsyncSession]
    src: Backbone
    dst: Backbone
    effects: Table
    topic: str
    consumers: list[EventConsumer] = field(default_factory=list)

    @property
    def dlq(self) -> str:
        return dlq_of(self.topic)

    def handler(self) -> Handler:
        effects = self.effects

        async def handle(session: AsyncSession, event: CloudEvent) -> None:
            body = Registered.model_validate(event.data)  # invalid payload → ValidationError → DLQ
            await session.execute(effects.insert().values(event_id=event.id, subject=body.uscc))

        return handle

    async def effect_count(self, subject: str | None = None) -> int:
        q = select(func.count()).select_from(self.effects)
        if subject is not None:
            q = q.where(self.effects.c.subject == subject)
        async with self.sf() as s:
            return int((await s.execute(q)).scalar_one())

    async def effects_per_event(self) -> dict[str, int]:
        q = select(self.effects.c.event_id, func.count()).group_by(self.effects.c.event_id)
        async with self.sf() as s:
            return {r[0]: int(r[1]) for r in await s.execute(q)}

    async def pending(self) -> int:
        """Rows in the outbox: every one is pending (the relay deletes what it published)."""
        ob = self.src.outbox
        async with self.sf() as s:
            q = select(func.count()).select_from(ob)  # the relay deletes what it published
            return int((await s.execute(q)).scalar_one())

    async def consumer(
        self,
        producer: AIOKafkaProducer,
        group: str,
        name: str = "bbtest",
        cfg: Settings | None = None,
        start: bool = True,
        handler: Handler | None = None,
        batch_handler: BatchHandler | None = None,
        max_batch: int = 2000,
    ) -> EventConsumer:
        """A consumer of this test's topic applying ``REGISTERED`` with ``handler`` (default: the effects table's)."""
        kc = make_consumer(cfg or settings("evaluation"), group)
        ec = EventConsumer(name, self.dst, self.sf, kc, producer, [self.topic], {REGISTERED: handler or self.handler()},
                           batch_handlers=None if batch_handler is None else {REGISTERED: batch_handler},
                           max_batch=max_batch)
        ec.subscribe()
        if start:
            await kc.start()
        self.consumers.append(ec)
        return ec


@contextlib.asynccontextmanager
async def scratch(cfg: Settings | None = None, partitions: int = 4) -> AsyncIterator[Scratch]:
    """A fresh schema and a fresh topic (+ its DLQ) for one test; dropped afterwards."""
    tag = uuid.uuid4().hex[:8]
    schema = f"bb_{tag}"
    service = f"bbt{tag}"  # the source backbone publishes to zjtx.<service>.events: private to this test
    md = MetaData(schema=schema)
    # Two backbones on one metadata would clash on table names, so the consumer side gets its own schema.
    src = Backbone(service, md)
    dst_md = MetaData(schema=schema + "_dst")
    dst = Backbone("bbdst", dst_md)
    effects = Table("effects", dst_md, Column("event_id", String(100)), Column("subject", String(64)))
    engine = engine_for("registry")
    async with engine.begin() as conn:
        for name, meta in ((schema, md), (schema + "_dst", dst_md)):
            await conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{name}"')
            await conn.run_sync(meta.create_all)
    topic = topic_of(service)
    base = cfg or settings("registry")
    await provision_topics(
        Settings(service="registry", kafka_bootstrap=base.kafka_bootstrap, kafka_partitions=partitions),
        [topic, dlq_of(topic)],
        attempts=5,
    )
    sc = Scratch(schema, engine, make_session_factory(engine), src, dst, effects, topic)
    try:
        yield sc
    finally:
        for ec in sc.consumers:
            ec.stop()
            with contextlib.suppress(Exception):
                await ec.consumer.stop()
        async with engine.begin() as conn:
            await conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}_dst" CASCADE')
        await engine.dispose()


async def read_all(topic: str, expected: int, bootstrap: str | None = None, within: float = 15.0) -> list[Any]:
    """Every record of ``topic``: reads until ``expected`` arrived and then two more empty polls."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap or settings("registry").kafka_bootstrap,
        group_id=unique_group("reader"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=1500,
        heartbeat_interval_ms=300,
    )
    await consumer.start()
    out: list[Any] = []
    quiet = 0
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=250)
            got = sum(len(m) for m in batch.values())
            for msgs in batch.values():
                out.extend(msgs)
            if len(out) >= expected:
                quiet = quiet + 1 if got == 0 else 0
                if quiet >= 2:
                    break
    finally:
        await consumer.stop()
    return out


def header(record: Any, name: str) -> str | None:
    for k, v in record.headers or ():
        if k == name:
            return bytes(v).decode()
    return None


async def drive(consumers: list[EventConsumer], done: Any, within: float = 20.0, what: str = "done") -> None:
    """Poll ``consumers`` round-robin until ``await done()`` is true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        for c in consumers:
            await c.poll_once(timeout_ms=100)
        if await done():
            return
    raise AssertionError(f"timed out after {within}s waiting for {what}")


class TcpProxy:
    """A TCP proxy between clients and the broker that can pass traffic or refuse it (outage)."""

    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.target_port = target_port
        self.passing = True
        self.port = 0
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()
        self.connections = 0
        self.refused = 0

    async def start(self, port: int = 0) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.passing:
            self.refused += 1
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        self._links.update((writer, up_writer))
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            self._links.discard(writer)
            self._links.discard(up_writer)

    def refuse(self) -> None:
        """Outage: drop every open connection and reset new ones."""
        self.passing = False
        for w in list(self._links):
            with contextlib.suppress(Exception):
                w.transport.abort()
        self._links.clear()

    def allow(self) -> None:
        self.passing = True

    async def close(self) -> None:
        self.refuse()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
