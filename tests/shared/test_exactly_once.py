"""Exactly-once effects on an at-least-once broker: relay crashes, consumer crashes, duplicates, two relays,
rollbacks. Real PostgreSQL, real broker; each test has its own schema and its own topic."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from aiokafka import TopicPartition

from shared.events.envelope import CloudEvent
from shared.events.kafka import make_producer as mk_producer
from shared.events.outbox import OutboxRelay, emit
from tests.harness import make_producer, settings, unique_group
from tests.shared.support import REGISTERED, drive, header, new_uscc, read_all, scratch


async def test_relay_crash_after_publish_before_mark_is_absorbed() -> None:
    async with scratch() as sc:
        uscc = new_uscc()
        async with sc.sf() as s, s.begin():
            eid = await emit(s, sc.src, REGISTERED, uscc, {"uscc": uscc}, regioncode="330106")
        producer = await make_producer()
        try:
            crashing = OutboxRelay(sc.src, sc.sf, producer)

            async def crash(n: int) -> None:
                raise RuntimeError(f"relay killed after publishing {n} rows")

            crashing.after_publish = crash
            with pytest.raises(RuntimeError, match="relay killed"):
                await crashing.drain()
            assert await sc.pending() == 1, "the delete rolled back with the crash: the row is still pending"

            assert await OutboxRelay(sc.src, sc.sf, producer).drain() == 1
            assert await sc.pending() == 0

            records = await read_all(sc.topic, 2)
            assert [header(r, "ce_id") for r in records] == [str(eid), str(eid)], "published twice"

            consumer = await sc.consumer(producer, unique_group())

            async def settled() -> bool:
                return consumer.processed + consumer.duplicates >= 2

            await drive([consumer], settled, what="both copies consumed")
            assert await sc.effect_count(uscc) == 1
            assert consumer.processed == 1
            assert consumer.duplicates >= 1
        finally:
            await producer.stop()


async def test_rolled_back_transaction_publishes_nothing() -> None:
    async with scratch() as sc:
        uscc = new_uscc()

        class Boom(Exception):
            pass

        with pytest.raises(Boom):
            async with sc.sf() as s, s.begin():
                await emit(s, sc.src, REGISTERED, uscc, {"uscc": uscc}, regioncode="330106")
                raise Boom
        assert await sc.pending() == 0
        producer = await make_producer()
        try:
            relay = OutboxRelay(sc.src, sc.sf, producer)
            assert await relay.drain() == 0
            # A committed marker event proves the topic is readable; it must be the only record there.
            marker = new_uscc()
            async with sc.sf() as s, s.begin():
                marker_id = await emit(s, sc.src, REGISTERED, marker, {"uscc": marker})
            assert await relay.drain() == 1
            records = await read_all(sc.topic, 1)
            assert [header(r, "ce_id") for r in records] == [str(marker_id)]
            assert {r.key.decode() for r in records} == {marker}
        finally:
            await producer.stop()


async def test_consumer_crash_after_db_commit_before_offset_commit() -> None:
    async with scratch() as sc:
        uscc = new_uscc()
        async with sc.sf() as s, s.begin():
            await emit(s, sc.src, REGISTERED, uscc, {"uscc": uscc})
        producer = await make_producer()
        group = unique_group("crash")
        try:
            assert await OutboxRelay(sc.src, sc.sf, producer).drain() == 1
            first = await sc.consumer(producer, group)

            async def no_commit(offsets: dict[TopicPartition, int]) -> None:
                return None  # the process "dies" between the DB commit and the offset commit

            first._commit = no_commit  # type: ignore[method-assign]

            async def applied() -> bool:
                return await sc.effect_count(uscc) == 1

            await drive([first], applied, what="first consumer applied the effect")
            first.stop()
            await first.consumer.stop()

            second = await sc.consumer(producer, group)

            async def redelivered() -> bool:
                return second.duplicates >= 1

            await drive([second], redelivered, what="redelivery to the second consumer")
            assert second.processed == 0
            assert await sc.effect_count(uscc) == 1
            # The second consumer did commit: a third member of the group sees nothing new.
            tps = second.consumer.assignment()
            committed = {tp: await second.consumer.committed(tp) for tp in tps}
            assert any(off == 1 for off in committed.values()), committed
        finally:
            await producer.stop()


async def test_same_event_delivered_three_times_applies_once() -> None:
    async with scratch() as sc:
        uscc = new_uscc()
        event = CloudEvent(id="dup-" + uscc, source="/zjtx/test", type=REGISTERED, subject=uscc, data={"uscc": uscc})
        producer = await make_producer()
        try:
            for _ in range(3):
                await producer.send_and_wait(
                    sc.topic, value=event.kafka_value(), key=uscc.encode(), headers=event.kafka_headers()
                )
            consumer = await sc.consumer(producer, unique_group())

            async def all_seen() -> bool:
                return consumer.processed + consumer.duplicates == 3

            await drive([consumer], all_seen, what="three deliveries")
            assert consumer.processed == 1
            assert consumer.duplicates == 2
            assert await sc.effect_count(uscc) == 1
        finally:
            await producer.stop()


async def test_batch_mixing_applied_and_new_events_applies_only_the_new() -> None:
    """The inbox rows of a batch go in by COPY; one already there (a redelivery) rolls the COPY back to its
    savepoint and the conflict-skipping insert runs: the new event is applied once, the old one counted as a
    duplicate."""
    async with scratch() as sc:
        uscc = new_uscc()
        old, new = (CloudEvent(id=f"{tag}-{uscc}", source="/zjtx/test", type=REGISTERED, subject=uscc,
                               data={"uscc": uscc}) for tag in ("old", "new"))
        producer = await make_producer()
        try:
            first = await sc.consumer(producer, unique_group("first"))
            await producer.send_and_wait(sc.topic, value=old.kafka_value(), key=uscc.encode(),
                                         headers=old.kafka_headers())

            async def applied() -> bool:
                return first.processed == 1

            await drive([first], applied, what="the old event applied")
            await producer.send_and_wait(sc.topic, value=new.kafka_value(), key=uscc.encode(),
                                         headers=new.kafka_headers())
            second = await sc.consumer(producer, unique_group("second"))  # same name: same inbox, reads both
            records: list[object] = []
            for _ in range(100):
                got = await second.consumer.getmany(timeout_ms=200)
                records += [m for batch in got.values() for m in batch]
                if len(records) >= 2:
                    break
            assert len(records) == 2
            await second.process_batch(records)  # type: ignore[arg-type]
            assert (second.processed, second.duplicates) == (1, 1)
            assert await sc.effects_per_event() == {old.id: 1, new.id: 1}
        finally:
            await producer.stop()


async def test_two_relays_at_once_publish_each_event_once() -> None:
    """Two relays drain one outbox concurrently: every event is published once and applied once.

    Tansu 0.6 (the test broker) can lose the first record batch of an empty partition when two producers append
    to it at the same moment (reproduced with two bare aiokafka producers: 2 of 80 runs lost offsets 0-11); so
    every partition gets one record first, and the assertions count the outbox's events among what was read."""
    n = 1000
    async with scratch() as sc:
        warm = await make_producer()
        try:
            for partition in range(4):  # scratch() creates 4 partitions
                uscc = f"91330199{partition:010d}"
                event = CloudEvent(id=f"warm-{uscc}", source="/zjtx/test", type=REGISTERED, subject=uscc,
                                   data={"uscc": uscc})
                await warm.send_and_wait(sc.topic, value=event.kafka_value(), key=uscc.encode(),
                                         headers=event.kafka_headers(), partition=partition)
        finally:
            await warm.stop()
        ids: list[str] = []
        for chunk in range(10):
            async with sc.sf() as s, s.begin():
                for i in range(n // 10):
                    uscc = f"913301{chunk}{i:011d}"
                    ids.append(str(await emit(s, sc.src, REGISTERED, uscc, {"uscc": uscc})))
        p1, p2 = mk_producer(settings("registry")), mk_producer(settings("registry"))
        await p1.start()
        await p2.start()
        try:
            r1 = OutboxRelay(sc.src, sc.sf, p1, batch_size=50)
            r2 = OutboxRelay(sc.src, sc.sf, p2, batch_size=50)
            a, b = await asyncio.gather(r1.drain(), r2.drain())
            assert a + b == n
            assert a > 0 and b > 0, f"both relays should have worked concurrently ({a}, {b})"
            assert await sc.pending() == 0

            records = await read_all(sc.topic, n + 4, within=40)  # slow CI machines: a generous window
            per_id = Counter(header(r, "ce_id") for r in records if not str(header(r, "ce_id")).startswith("warm-"))
            assert sum(per_id.values()) == n
            assert set(per_id) == set(ids)
            assert max(per_id.values()) == 1

            consumer = await sc.consumer(p1, unique_group())

            async def all_applied() -> bool:
                return await sc.effect_count() >= n + 4

            await drive([consumer], all_applied, what="1000 effects")
            per_event = {e: k for e, k in (await sc.effects_per_event()).items() if not e.startswith("warm-")}
            assert set(per_event) == set(ids)
            assert set(per_event.values()) == {1}
        finally:
            await p1.stop()
            await p2.stop()
