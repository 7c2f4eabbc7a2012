"""aiokafka clients with money-safe defaults, and topic provisioning from the catalogue."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from shared.events.catalog import ALL_TOPICS
from shared.settings import Settings

log = logging.getLogger(__name__)


def make_producer(settings: Settings, client_id: str | None = None) -> AIOKafkaProducer:
    """acks=all always; idempotence on in production (Tansu rejects InitProducerId, so off in tests)."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=client_id or f"zjtx-{settings.service}",
        acks="all",
        enable_idempotence=settings.kafka_idempotence,
        linger_ms=5,
        max_batch_size=256 * 1024,
        request_timeout_ms=15000,
        retry_backoff_ms=200,
    )


def make_consumer(settings: Settings, group_id: str, client_id: str | None = None) -> AIOKafkaConsumer:
    """Explicit commits only, earliest offset, short session timeout configurable for tests."""
    return AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=group_id,
        client_id=client_id or group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=max(100, settings.kafka_session_timeout_ms // 5),
        max_poll_interval_ms=300000,
        isolation_level="read_uncommitted",
    )


async def provision_topics(settings: Settings, topics: Iterable[str] = ALL_TOPICS, attempts: int = 30) -> None:
    """Create the declared topics (idempotent). Retries while the broker comes up."""
    wanted = list(topics)
    for attempt in range(1, attempts + 1):
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=10000)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [t for t in wanted if t not in existing]
            if missing:
                new = [NewTopic(t, settings.kafka_partitions, settings.kafka_replication) for t in missing]
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics(new)
                log.info("topics provisioned", extra={"topics": missing})
            return
        except (KafkaError, OSError) as exc:
            if attempt == attempts:
                raise
            log.warning("broker not ready (%s), retrying", exc)
            await asyncio.sleep(min(2.0, 0.1 * attempt))
        finally:
            await admin.close()
