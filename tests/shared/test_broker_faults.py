"""Nothing lost around the broker (issue 16, items 3 and 11), against the real Tansu broker:

- the broker stopped and restarted (its topics gone, then re-provisioned) while writes continue: every event is
  applied once and each enterprise's events in order;
- two relays draining one outbox at once keep each key's order;
- a row that can never be published is parked after N attempts with its error while the rest flow on;
- a dead letter is produced once, after the commit, even when the transaction is rolled back and retried;
- ``/readyz`` says the broker is down when it is, and ``/metrics`` shows the outbox backlog from the table.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import subprocess
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator

from sqlalchemy import text

from shared.events.catalog import ALL_TOPICS, physical
from shared.events.envelope import CloudEvent
from shared.events.kafka import TopicGuard, provision_topics
from shared.events.kafka import make_producer as mk_producer
from shared.events.outbox import OutboxRelay, emit, parked_rows, refresh_metrics
from shared.infra import free_port, start_tansu
from shared.settings import Settings
from tests.harness import auth, make_producer, running_service, settings, unique_group, wait_for
from tests.shared.support import REGISTERED, Scratch, drive, header, new_uscc, read_all, scratch


class Broker:
    """A private Tansu this test may stop and start again on the same port (the session's broker stays up)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = start_tansu(self.port)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def start(self) -> None:
        self.proc = start_tansu(self.port)


@contextlib.contextmanager
def private_broker() -> Iterator[Broker]:
    broker = Broker()
    try:
        yield broker
    finally:
        broker.stop()


async def _order_log(sc: Scratch) -> str:
    table = f'"{sc.schema}_dst".applied'
    async with sc.engine.begin() as conn:
        await conn.exec_driver_sql(f"CREATE TABLE {table} (seq bigserial PRIMARY KEY, subject text, n int)")
    return table


def _recording_handler(table: str):  # type: ignore[no-untyped-def]
    async def handle(session, event: CloudEvent) -> None:  # type: ignore[no-untyped-def]
        await session.execute(text(f"INSERT INTO {table} (subject, n) VALUES (:s, :n)"),
                              {"s": event.subject, "n": int(event.data["n"])})

    return handle


async def _applied(sc: Scratch, table: str) -> dict[str, list[int]]:
    per_key: dict[str, list[int]] = defaultdict(list)
    async with sc.sf() as s:
        for subject, n in await s.execute(text(f"SELECT subject, n FROM {table} ORDER BY seq")):
            per_key[subject].append(n)
    return per_key


@contextlib.asynccontextmanager
async def _running(*coros) -> AsyncIterator[list[asyncio.Task[None]]]:  # type: ignore[no-untyped-def]
    tasks = [asyncio.create_task(c) for c in coros]
    try:
        yield tasks
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_broker_restart_while_writing_loses_nothing_and_keeps_key_order() -> None:
    with private_broker() as broker:
        cfg = settings("registry", kafka_bootstrap=broker.bootstrap, kafka_partitions=3,
                       kafka_session_timeout_ms=1500)
        async with scratch(cfg, partitions=3) as sc:
            table = await _order_log(sc)
            keys = [new_uscc() for _ in range(12)]
            counters = dict.fromkeys(keys, 0)
            rng = random.Random(16)

            async def write(events: int) -> None:
                async with sc.sf() as s, s.begin():
                    for _ in range(events):
                        key = rng.choice(keys)
                        await emit(s, sc.src, REGISTERED, key, {"uscc": key, "n": counters[key]})
                        counters[key] += 1

            producer = mk_producer(cfg)
            await producer.start()
            consumer = await sc.consumer(producer, unique_group(), cfg=cfg, handler=_recording_handler(table))
            guard = TopicGuard(cfg.kafka_bootstrap, 3)

            async def total_applied() -> int:
                return sum(len(v) for v in (await _applied(sc, table)).values())

            async def published_applied() -> bool:  # everything the relay published has been applied
                return await total_applied() == sum(counters.values()) - await sc.pending()

            try:
                async with _running(consumer.run()):
                    relay = OutboxRelay(sc.src, sc.sf, producer, poll_interval=0.05, guard=guard)
                    relaying = asyncio.create_task(relay.run())
                    for _ in range(20):
                        await write(5)
                    await wait_for(lambda: _is(total_applied, 100), timeout=30, what="100 events before the restart")

                    async def writer() -> None:
                        for _ in range(60):
                            await write(6)
                            await asyncio.sleep(0.05)

                    writing = asyncio.create_task(writer())
                    await asyncio.sleep(0.3)
                    # Tansu keeps records in memory: what it acknowledged and nobody read yet dies with it (a real
                    # Kafka keeps it). So the relay pauses and the consumer catches up before the stop; the writes
                    # go on meanwhile, into the outbox.
                    relay.stop()
                    await relaying
                    await wait_for(published_applied, timeout=30, what="the consumer caught up")
                    broker.stop()  # the broker dies with its topics; writes go on
                    relay = OutboxRelay(sc.src, sc.sf, producer, poll_interval=0.05, guard=guard)
                    relaying = asyncio.create_task(relay.run())
                    await asyncio.sleep(1.5)
                    broker.start()  # an empty broker: clients reconnect (and may auto-create what they ask for)
                    await asyncio.sleep(0.7)
                    await provision_topics(  # what the dev stack does after a restart
                        Settings(service="registry", kafka_bootstrap=broker.bootstrap, kafka_partitions=3),
                        [sc.topic, sc.dlq], attempts=20,
                    )
                    await writing
                    total = sum(counters.values())
                    await wait_for(lambda: _is(total_applied, total), timeout=60, what=f"all {total} events")
                    await asyncio.sleep(1.0)  # nothing more (no duplicates applied)
                    per_key = await _applied(sc, table)
                    assert sum(len(v) for v in per_key.values()) == total
                    for key in keys:
                        assert per_key[key] == list(range(counters[key])), f"{key}: lost, doubled or out of order"
                    assert await sc.pending() == 0
                    relay.stop()
                    await relaying
            finally:
                await producer.stop()


async def _is(count, want: int) -> bool:  # type: ignore[no-untyped-def]
    return bool(await count() >= want)


async def test_two_relays_at_once_keep_each_keys_order() -> None:
    """Two relays (two processes' producers) draining one outbox: one enterprise's events stay in order."""
    async with scratch(partitions=2) as sc:
        warm = await make_producer()
        try:  # Tansu can lose the first batch of an empty partition appended by two producers at once
            for partition in range(2):
                uscc = f"91330199{partition:010d}"
                event = CloudEvent(id=f"warm-{uscc}", source="/zjtx/test", type=REGISTERED, subject=uscc,
                                   data={"uscc": uscc, "n": 0})
                await warm.send_and_wait(sc.topic, value=event.kafka_value(), key=uscc.encode(),
                                         headers=event.kafka_headers(), partition=partition)
        finally:
            await warm.stop()
        keys = [new_uscc() for _ in range(6)]
        n = 1200
        for chunk in range(6):
            async with sc.sf() as s, s.begin():
                for i in range(n // 6):
                    seq = chunk * (n // 6) + i
                    key = keys[seq % len(keys)]
                    await emit(s, sc.src, REGISTERED, key, {"uscc": key, "n": seq // len(keys)})
        p1, p2 = mk_producer(settings("registry")), mk_producer(settings("registry"))
        await p1.start()
        await p2.start()
        try:
            r1 = OutboxRelay(sc.src, sc.sf, p1, batch_size=40)
            r2 = OutboxRelay(sc.src, sc.sf, p2, batch_size=40)
            a, b = await asyncio.gather(r1.drain(), r2.drain())
            assert a + b == n
        finally:
            await p1.stop()
            await p2.stop()
        records = await read_all(sc.topic, n + 2, within=40)
        per_key: dict[str, list[int]] = defaultdict(list)
        for r in sorted(records, key=lambda r: (r.partition, r.offset)):
            if r.key.decode() in keys:
                from shared.events.envelope import loads

                per_key[r.key.decode()].append(loads(r.value)["n"])
        for key in keys:
            assert per_key[key] == list(range(n // len(keys))), f"{key} out of order"


async def test_poison_row_is_parked_while_the_rest_flow_on() -> None:
    """A record larger than the broker takes can never be published: it is parked after ``max_attempts`` with its
    error; the rows of other keys go out at once, the same key's later row once the poison is parked."""
    async with scratch() as sc:
        poison_key, k2, k3 = new_uscc(), new_uscc(), new_uscc()
        async with sc.sf() as s, s.begin():
            await emit(s, sc.src, REGISTERED, poison_key, {"uscc": poison_key, "blob": "x" * 2_000_000})
            later = await emit(s, sc.src, REGISTERED, poison_key, {"uscc": poison_key, "n": 1})
            e2 = await emit(s, sc.src, REGISTERED, k2, {"uscc": k2})
            e3 = await emit(s, sc.src, REGISTERED, k3, {"uscc": k3})
        producer = await make_producer()
        try:
            relay = OutboxRelay(sc.src, sc.sf, producer, max_attempts=3,
                                guard=TopicGuard(settings("registry").kafka_bootstrap, 4))
            assert await relay.drain() == 2, "the other keys' rows flow on"
            records = await read_all(sc.topic, 2)
            assert {header(r, "ce_id") for r in records} == {str(e2), str(e3)}
            assert await relay.drain() == 0  # attempt 2: the poison still holds its key's later row
            assert await relay.drain() == 1  # attempt 3 parks it: the later row goes out
            records = await read_all(sc.topic, 3)
            assert {header(r, "ce_id") for r in records} == {str(e2), str(e3), str(later)}
            assert await relay.drain() == 0
            parked = await parked_rows(sc.sf, sc.src, 3)
            assert len(parked) == 1 and parked[0]["key"] == poison_key and parked[0]["attempts"] == 3
            assert "MessageSizeTooLarge" in (parked[0]["last_error"] or "")
            assert await refresh_metrics(sc.sf, sc.src, 3) == (0, 0.0, 1)
        finally:
            await producer.stop()


async def test_dead_letter_produced_once_when_the_transaction_is_retried() -> None:
    """A poison event next to an event whose handler hits a retryable error once: the batch's transaction is rolled
    back and retried; the poison's dead letter is produced once, after the commit."""
    async with scratch() as sc:
        good_key, bad_key = new_uscc(), new_uscc()
        poison = CloudEvent(id="poison-1", source="/zjtx/test", type=REGISTERED, subject=bad_key,
                            data={"no_uscc": True})
        good = CloudEvent(id="good-1", source="/zjtx/test", type=REGISTERED, subject=good_key,
                          data={"uscc": good_key})
        producer = await make_producer()
        try:
            for ev in (poison, good):
                await producer.send_and_wait(sc.topic, value=ev.kafka_value(), key=b"same-key",
                                             headers=ev.kafka_headers())
            consumer = await sc.consumer(producer, unique_group())
            inner = consumer.handlers[REGISTERED]
            calls = Counter[str]()

            async def flaky(session, event: CloudEvent) -> None:  # type: ignore[no-untyped-def]
                calls[event.id] += 1
                if event.id == "good-1" and calls[event.id] == 1 and calls["poison-1"] >= 2:
                    raise ConnectionError("database connection reset")  # retryable: the transaction is retried
                await inner(session, event)

            consumer.handlers[REGISTERED] = flaky

            async def applied() -> bool:
                return await sc.effect_count(good_key) == 1

            await drive([consumer], applied, what="the good event")
            assert calls["poison-1"] >= 3, "the transaction was retried after the dead letter was decided"
            dead = await read_all(sc.dlq, 1, within=5)
            assert [header(r, "ce_id") for r in dead] == ["poison-1"], "one dead letter, not one per attempt"
            assert consumer.dead_lettered == 1
        finally:
            await producer.stop()


async def test_readyz_says_broker_down_and_metrics_count_the_table() -> None:
    from services.registry.db.models import backbone

    with private_broker() as broker:
        async with running_service("registry", relay=True, kafka_bootstrap=broker.bootstrap) as (app, client):
            async def ready() -> bool:
                return (await client.get("/readyz")).json()["checks"]["broker"] == "ok"

            await wait_for(ready, timeout=20, what="broker ok")
            broker.stop()
            r = await client.get("/readyz")
            assert r.status_code == 503 and r.json()["checks"]["broker"].startswith("down"), r.json()
            sf = app.state.runtime.session_factory
            uscc = new_uscc()
            async with sf() as s, s.begin():
                for _ in range(7):
                    await emit(s, backbone, "zjtx.registry.enterprise.updated.v1", uscc, {"uscc": uscc})
            async with sf() as s:
                in_table = (await s.execute(text("SELECT count(*) FROM registry.outbox WHERE attempts < 5"))).scalar()
            assert in_table >= 7

            async def metric_shows_backlog() -> bool:
                body = (await client.get("/metrics")).text
                line = next((x for x in body.splitlines() if x.startswith('outbox_pending_rows{service="registry"}')),
                            "")
                return line.endswith(f" {float(in_table)}")

            await wait_for(metric_shows_backlog, timeout=10, what="outbox_pending_rows from the table")
            broker.start()  # empty: provisioned again as the dev stack does, then the backlog drains
            rt = app.state.runtime
            await provision_topics(rt.settings, [physical(t, rt.settings.topic_namespace) for t in ALL_TOPICS],
                                   attempts=20, repair=True)
            await wait_for(ready, timeout=20, what="broker ok again")

            async def drained() -> bool:
                async with sf() as s:
                    return bool((await s.execute(text("SELECT count(*) FROM registry.outbox"))).scalar() == 0)

            await wait_for(drained, timeout=30, what="backlog drained after the restart")


async def test_parked_rows_endpoint_is_for_admins() -> None:
    uscc = new_uscc()
    async with running_service("registry") as (app, client):
        sf = app.state.runtime.session_factory
        async with sf() as s, s.begin():
            from services.registry.db.models import backbone

            eid = await emit(s, backbone, "zjtx.registry.enterprise.updated.v1", uscc, {"uscc": uscc})
            await s.execute(text("UPDATE registry.outbox SET attempts = 5, last_error = 'MessageSizeTooLargeError: x' "
                                 "WHERE event_id = :e"), {"e": eid})
        try:
            r = await client.get("/api/v1/admin/outbox/parked", headers=auth("admin", "330000"))
            assert r.status_code == 200, r.text
            rows = [i for i in r.json()["items"] if i["event_id"] == str(eid)]
            assert rows and rows[0]["last_error"].startswith("MessageSizeTooLarge") and rows[0]["attempts"] == 5
            r = await client.get("/api/v1/admin/outbox/parked", headers=auth("province_official", "330000"))
            assert r.status_code == 403
        finally:
            async with sf() as s, s.begin():
                await s.execute(text("DELETE FROM registry.outbox WHERE event_id = :e"), {"e": eid})


async def test_stopping_relay_finishes_its_batch_and_starts_no_other() -> None:
    """SIGTERM (``runtime.stop`` → ``relay.stop()``) mid-drain: the batch in flight is published and committed,
    the rest is left in the outbox for the next start."""
    async with scratch() as sc:
        async with sc.sf() as s, s.begin():
            for _ in range(50):
                u = new_uscc()
                await emit(s, sc.src, REGISTERED, u, {"uscc": u})
        producer = await make_producer()
        try:
            relay = OutboxRelay(sc.src, sc.sf, producer, batch_size=10)

            async def sigterm(n: int) -> None:
                relay.stop()

            relay.after_publish = sigterm
            assert await relay.drain() == 10
            assert await sc.pending() == 40
            assert len(await read_all(sc.topic, 10)) == 10
        finally:
            await producer.stop()


async def test_consumer_rereads_logs_a_restarted_broker_recreated() -> None:
    """A restarted in-memory broker has lost the topics and the group's offsets while the consumer still holds its
    fetch positions into the old logs: once the new logs have grown past them, fetching from there would skip
    every record before. The consumer notices the lost offsets before applying and reads those logs again."""
    with private_broker() as broker:
        cfg = settings("registry", kafka_bootstrap=broker.bootstrap, kafka_partitions=3,
                       kafka_session_timeout_ms=1500)
        async with scratch(cfg, partitions=3) as sc:
            table = await _order_log(sc)
            keys = [new_uscc() for _ in range(9)]
            counters = dict.fromkeys(keys, 0)

            async def write(events: int) -> None:
                async with sc.sf() as s, s.begin():
                    for i in range(events):
                        key = keys[i % len(keys)]
                        await emit(s, sc.src, REGISTERED, key, {"uscc": key, "n": counters[key]})
                        counters[key] += 1

            async def total_applied() -> int:
                return sum(len(v) for v in (await _applied(sc, table)).values())

            producer = mk_producer(cfg)
            await producer.start()
            consumer = await sc.consumer(producer, unique_group(), cfg=cfg, handler=_recording_handler(table))
            guard = TopicGuard(cfg.kafka_bootstrap, 3)
            try:
                relay = OutboxRelay(sc.src, sc.sf, producer, poll_interval=0.05, guard=guard)
                async with _running(consumer.run(), relay.run()):
                    await write(90)
                    await wait_for(lambda: _is(total_applied, 90), timeout=30, what="90 events before the restart")
                    await asyncio.sleep(0.5)  # their offsets committed
                    relay.stop()
                broker.stop()
                broker.start()
                await provision_topics(Settings(service="registry", kafka_bootstrap=broker.bootstrap,
                                                kafka_partitions=3), [sc.topic, sc.dlq], attempts=20, repair=True)
                relay = OutboxRelay(sc.src, sc.sf, producer, poll_interval=0.05, guard=guard)
                async with _running(relay.run()):
                    await write(270)  # the new logs grow well past the old positions (~30 per partition)
                    async def relayed() -> bool:
                        return bool(await sc.pending() == 0)

                    await wait_for(relayed, timeout=30, what="all relayed")
                    async with _running(consumer.run()):
                        await wait_for(lambda: _is(total_applied, 360), timeout=60, what="all 360 events")
                    relay.stop()
                per_key = await _applied(sc, table)
                for key in keys:
                    assert per_key[key] == list(range(counters[key])), f"{key}: lost, doubled or out of order"
            finally:
                await producer.stop()


async def test_topic_guard_reads_the_metadata_again_only_when_the_broker_may_have_changed() -> None:
    """The relay's guard answers from what it found while the producer's connections are the same live ones (no
    metadata round trip per batch), and reads the metadata again after a broker restart broke them: the topic
    the restarted broker lost is created again with its declared partitions."""
    with private_broker() as broker:
        cfg = settings("registry", kafka_bootstrap=broker.bootstrap, kafka_partitions=3)
        topic = f"zjtx.guardtest{new_uscc()[-6:]}.events"
        await provision_topics(Settings(service="registry", kafka_bootstrap=broker.bootstrap, kafka_partitions=3),
                               [topic], attempts=20)
        producer = mk_producer(cfg)
        await producer.start()
        reads = 0
        fetch = producer.client.fetch_all_metadata

        async def counted():  # type: ignore[no-untyped-def]
            nonlocal reads
            reads += 1
            return await fetch()

        producer.client.fetch_all_metadata = counted  # type: ignore[method-assign]
        try:
            guard = TopicGuard(cfg.kafka_bootstrap, 3)
            assert await guard.check(producer, {topic}) == {topic: [0, 1, 2]}
            for _ in range(5):
                assert await guard.check(producer, {topic}, create=False) == {topic: [0, 1, 2]}
            assert reads == 1
            broker.stop()
            broker.start()  # empty: the topic is gone
            for _ in range(100):  # the producer notices the broken connections
                if not all(c.connected() for c in producer.client._conns.values()):
                    break
                await asyncio.sleep(0.05)
            assert await guard.check(producer, {topic}) == {topic: [0, 1, 2]}  # created again
            assert reads >= 2
        finally:
            await producer.stop()
