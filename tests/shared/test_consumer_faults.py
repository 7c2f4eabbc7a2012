"""Poison events go to ``<topic>.dlq`` while their partition keeps flowing; consumer groups split partitions
and lose nothing across a rebalance; a failed batch is re-read, not skipped."""

from __future__ import annotations

from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError

from shared.events.envelope import CloudEvent
from shared.events.outbox import OutboxRelay, emit
from tests.harness import make_producer, unique_group
from tests.shared.support import REGISTERED, drive, header, new_uscc, read_all, scratch


def _event(uscc: str, type_: str = REGISTERED, data: dict[str, str] | None = None) -> CloudEvent:
    return CloudEvent(
        id=f"{type_}-{uscc}-{len(str(data))}",
        source="/zjtx/test",
        type=type_,
        subject=uscc,
        data={"uscc": uscc} if data is None else data,
    )


async def test_poison_events_go_to_dlq_and_the_partition_keeps_flowing() -> None:
    async with scratch() as sc:
        uscc = new_uscc()
        key = uscc.encode()
        good = _event(uscc)
        unknown = _event(uscc, type_="zjtx.registry.enterprise.teleported.v1")
        invalid = _event(uscc, data={"uscc": "太短"})
        poison = [
            ("bad json", good.kafka_headers(), b"{not json"),
            ("unknown type", unknown.kafka_headers(), unknown.kafka_value()),
            ("invalid payload", invalid.kafka_headers(), invalid.kafka_value()),
            ("no ce headers", [("content-type", b"application/json")], good.kafka_value()),
        ]
        producer = await make_producer()
        try:
            for _, headers, value in poison:
                await producer.send_and_wait(sc.topic, value=value, key=key, headers=headers)
            # Same key → same partition, behind the poison.
            await producer.send_and_wait(sc.topic, value=good.kafka_value(), key=key, headers=good.kafka_headers())
            consumer = await sc.consumer(producer, unique_group())

            async def flowed() -> bool:
                return await sc.effect_count(uscc) == 1

            await drive([consumer], flowed, what="the good event behind the poison")
            assert consumer.dead_lettered == 4
            assert consumer.processed == 1

            dead = await read_all(sc.dlq, 4)
            assert len(dead) == 4
            # Keyed by the original offset (the batched consumer may dead-letter envelope errors first).
            by_offset = {int(header(r, "dlq_original_offset") or -1): r for r in dead}
            assert sorted(by_offset) == [0, 1, 2, 3]
            errors = {off: header(r, "dlq_error") or "" for off, r in by_offset.items()}
            assert "envelope" in errors[0] and "JSON" in errors[0]
            assert "unknown event type" in errors[1]
            assert "ValidationError" in errors[2] and "uscc" in errors[2]
            assert "missing CloudEvents attributes" in errors[3]
            partitions = {header(r, "dlq_original_partition") for r in dead}
            assert len(partitions) == 1
            for r in dead:
                assert header(r, "dlq_original_topic") == sc.topic
                assert header(r, "dlq_attempts") is not None
                assert r.key == key
            assert by_offset[0].value == b"{not json"  # the original bytes are kept for inspection
            # The partition's offset moved past all five records.
            tp = TopicPartition(sc.topic, int(partitions.pop() or 0))
            assert await consumer.consumer.committed(tp) == 5
        finally:
            await producer.stop()


async def test_two_consumers_split_partitions_and_lose_nothing_across_rebalance() -> None:
    async with scratch() as sc:
        producer = await make_producer()
        group = unique_group("split")
        try:
            relay = OutboxRelay(sc.src, sc.sf, producer)
            for _ in range(3):
                async with sc.sf() as s, s.begin():
                    for _ in range(100):
                        u = new_uscc()
                        await emit(s, sc.src, REGISTERED, u, {"uscc": u})
            assert await relay.drain() == 300
            first = await sc.consumer(producer, group, name="bbtest")
            while await sc.effect_count() < 40:  # first consumer alone, part of the backlog
                await first.poll_once(timeout_ms=200, max_records=20)
            assert await sc.effect_count() < 300

            second = await sc.consumer(producer, group, name="bbtest")
            for _ in range(4):  # the join happens while both poll; the first keeps working meanwhile
                await first.poll_once(timeout_ms=100, max_records=20)
                await second.poll_once(timeout_ms=100, max_records=20)
            async with sc.sf() as s, s.begin():
                for _ in range(100):
                    u = new_uscc()
                    await emit(s, sc.src, REGISTERED, u, {"uscc": u})
            assert await relay.drain() == 100

            async def all_applied() -> bool:
                return await sc.effect_count() >= 400

            await drive([first, second], all_applied, what="400 effects")
            per_event = await sc.effects_per_event()
            assert len(per_event) == 400
            assert set(per_event.values()) == {1}
            a, b = first.consumer.assignment(), second.consumer.assignment()
            assert a and b and not (a & b), (a, b)
            assert len(a | b) == 4
            assert second.processed > 0
            assert first.processed + second.processed == 400
        finally:
            await producer.stop()


async def test_failed_batch_is_reread_not_skipped() -> None:
    """A broker error mid-batch (here: the DLQ publish fails) must not advance past unprocessed records. The dead
    letters go out after the database commit, so the failed one is retried in place (the batch's inbox rows are
    committed: re-reading it would skip the poison record as a duplicate)."""
    async with scratch() as sc:
        uscc = new_uscc()
        key = uscc.encode()
        good = _event(uscc)
        producer = await make_producer()
        try:
            await producer.send_and_wait(sc.topic, value=b"garbage", key=key, headers=good.kafka_headers())
            await producer.send_and_wait(sc.topic, value=good.kafka_value(), key=key, headers=good.kafka_headers())
            consumer = await sc.consumer(producer, unique_group())
            real_dead_letter = consumer._dead_letter
            calls = 0

            async def flaky_dead_letter(msg, error, attempts):  # type: ignore[no-untyped-def]
                nonlocal calls
                calls += 1
                if calls == 1:
                    raise KafkaConnectionError("broker went away while dead-lettering")
                await real_dead_letter(msg, error, attempts)

            consumer._dead_letter = flaky_dead_letter  # type: ignore[method-assign]

            async def flowed() -> bool:
                return await sc.effect_count(uscc) == 1

            failures = 0
            loop_deadline = 40
            while not await flowed():
                loop_deadline -= 1
                assert loop_deadline > 0, "the good record was never processed"
                try:
                    await consumer.poll_once(timeout_ms=200)
                except KafkaConnectionError:
                    failures += 1
            assert failures == 0
            assert calls == 2, "the dead letter was produced again after the failure"
            assert consumer.dead_lettered == 1
            assert len(await read_all(sc.dlq, 1)) == 1
        finally:
            await producer.stop()


async def test_batch_prefetched_before_a_rebalance_is_read_again_not_skipped() -> None:
    """The next batch is fetched while the current one is applied. If the group rebalanced meanwhile, that batch
    is not applied (its partitions may have moved) and the fetch position goes back to where it began: its
    records come again, none is skipped, each is applied once."""
    async with scratch(partitions=1) as sc:
        usccs = [new_uscc() for _ in range(6)]
        producer = await make_producer()
        try:
            for u in usccs:
                ev = _event(u)
                await producer.send_and_wait(sc.topic, value=ev.kafka_value(), key=u.encode(),
                                             headers=ev.kafka_headers())
            consumer = await sc.consumer(producer, unique_group())
            while consumer.processed == 0:
                await consumer.poll_once(timeout_ms=200, max_records=2)
            assert consumer.processed == 2
            assert consumer._prefetch is not None  # the next two were being fetched meanwhile
            consumer._generation += 1  # as a rebalance does
            assert await consumer.poll_once(timeout_ms=200, max_records=2) == 0  # the prefetched batch: dropped
            for _ in range(40):
                if consumer.processed == 6:
                    break
                await consumer.poll_once(timeout_ms=200, max_records=2)
            assert consumer.processed == 6 and consumer.duplicates == 0
            assert await sc.effect_count() == 6
        finally:
            await producer.stop()
