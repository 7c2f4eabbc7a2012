"""``zjtx topics --repair`` after a broker restart converges (issue 16, the chaos run): a running service's client
that asks for a topic between the repair's deletion and its creation makes Tansu auto-create it again with 4
partitions; the repair's create then found it existing and returned, leaving the topic with the wrong partitions
and the relay holding its outbox for good (the chaos run: 617 rows never published). Against the real broker; the
racing client is a real producer asking for the topic's metadata at that moment."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from shared.events import kafka
from shared.settings import Settings


async def _partitions(settings: Settings, topic: str) -> int | None:
    admin = kafka.make_admin(settings)
    await admin.start()
    try:
        return {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics()}.get(topic)
    finally:
        await admin.close()


async def _auto_create(settings: Settings, topic: str) -> None:
    """What a service's client does when it asks for a topic the broker does not have."""
    producer = kafka.make_producer(settings)
    await producer.start()
    try:
        await producer.partitions_for(topic)
    finally:
        await producer.stop()


async def test_repair_returns_only_when_the_topic_has_its_declared_partitions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings(service="registry", kafka_partitions=6)
    topic = f"repair-{uuid.uuid4().hex[:10]}"
    await _auto_create(settings, topic)
    auto = await _partitions(settings, topic)
    assert auto is not None and auto != 6, "the broker auto-creates with its own partition count"
    real_admin = kafka.make_admin
    raced: list[str] = []

    def racing_admin(s: Settings) -> Any:
        admin = real_admin(s)
        create = admin.create_topics

        async def create_after_a_client_asked(new: Any, *args: Any, **kw: Any) -> Any:
            if not raced:  # once: a client asks for the topic right after the repair deleted it
                raced.append(topic)
                await _auto_create(s, topic)
            return await create(new, *args, **kw)

        admin.create_topics = create_after_a_client_asked  # type: ignore[method-assign]
        return admin

    monkeypatch.setattr(kafka, "make_admin", racing_admin)
    await kafka.provision_topics(settings, [topic], attempts=10, repair=True)
    assert raced, "the race happened"
    monkeypatch.setattr(kafka, "make_admin", real_admin)
    assert await _partitions(settings, topic) == 6
