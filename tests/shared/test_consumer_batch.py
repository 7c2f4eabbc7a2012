"""A consumer applies at most its batch bound per poll (one transaction); a service may declare a lower bound
than ``ZJTX_KAFKA_MAX_BATCH`` (evaluation: each event is heavy work, and a batch's objects live until its commit)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.evaluation.main import spec as evaluation_spec
from services.registry.main import spec as registry_spec
from shared.events.envelope import CloudEvent
from shared.runtime import consumer_batch
from tests.harness import make_producer, settings, unique_group
from tests.shared.support import REGISTERED, drive, new_uscc, scratch


def test_a_service_bound_applies_below_the_setting_never_above() -> None:
    cfg = settings("evaluation")
    assert cfg.kafka_max_batch == 2000
    assert consumer_batch(evaluation_spec, cfg) == 200
    assert consumer_batch(registry_spec, cfg) == 2000  # bulk consumer of the re-evaluation's results
    lower = cfg.model_copy(update={"kafka_max_batch": 50})
    assert consumer_batch(evaluation_spec, lower) == consumer_batch(registry_spec, lower) == 50


async def test_each_poll_applies_at_most_the_batch_bound() -> None:
    async with scratch(partitions=1) as sc:
        usccs = [new_uscc() for _ in range(30)]
        producer = await make_producer()
        try:
            for u in usccs:
                ev = CloudEvent(id=f"{REGISTERED}-{u}", source="/zjtx/test", type=REGISTERED, subject=u,
                                data={"uscc": u})
                await producer.send(sc.topic, value=ev.kafka_value(), key=u.encode(), headers=ev.kafka_headers())
            await producer.flush()
            handler = sc.handler()
            sizes: list[int] = []

            async def batch(session: AsyncSession, events: list[CloudEvent]) -> None:
                sizes.append(len(events))
                for e in events:
                    await handler(session, e)

            consumer = await sc.consumer(producer, unique_group(), handler=handler, batch_handler=batch, max_batch=7)

            async def all_applied() -> bool:
                return all([await sc.effect_count(u) == 1 for u in usccs])

            await drive([consumer], all_applied, what="30 events applied")
            assert sum(sizes) == 30 and max(sizes) == 7, sizes  # failed before: one batch of 30
        finally:
            await producer.stop()
