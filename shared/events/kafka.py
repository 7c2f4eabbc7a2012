"""aiokafka clients with money-safe defaults, and topic provisioning from the catalogue."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context

from shared.events.catalog import ALL_TOPICS
from shared.settings import Settings

log = logging.getLogger(__name__)


def security_options(settings: Settings) -> dict[str, Any]:
    """The broker security settings every aiokafka client gets (producer, consumer, admin): PLAINTEXT by default
    (Tansu in tests and the dev stack), SASL/SCRAM with the service's own principal in production."""
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = create_ssl_context(cafile=settings.kafka_ssl_cafile)
    if protocol.startswith("SASL_"):
        if not settings.kafka_sasl_username or settings.kafka_sasl_password is None:
            raise ValueError(
                f"{protocol} 需要配置 ZJTX_KAFKA_SASL_USERNAME 和 ZJTX_KAFKA_SASL_PASSWORD (no broker principal)"
            )
        options.update(
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_plain_username=settings.kafka_sasl_username,
            sasl_plain_password=settings.kafka_sasl_password.get_secret_value(),
        )
    return options


def broker_links(client: AIOKafkaProducer | AIOKafkaConsumer) -> tuple[object, ...] | None:
    """The broker connections of an aiokafka producer or consumer (its connection objects, compared by identity),
    or None when they cannot be seen (another aiokafka version). A broker that restarted (Tansu: empty) broke
    every connection to it, so while the connections are the same live objects, the broker is the one that was
    asked before: what it said about its topics and offsets still holds."""
    inner = getattr(client, "_client", None) or getattr(client, "client", None)  # (consumer, producer)
    conns = getattr(inner, "_conns", None)
    return tuple(conns.values()) if isinstance(conns, dict) else None


def same_live_links(client: AIOKafkaProducer | AIOKafkaConsumer, seen: tuple[object, ...] | None) -> bool:
    """Whether ``client``'s connections are still ``seen`` (``broker_links``), every one of them connected."""
    links = broker_links(client)
    if links is None or seen is None or links != seen:
        return False
    return all(getattr(c, "connected", lambda: False)() for c in links)


def make_admin(settings: Settings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=10000, **security_options(settings)
    )


def make_producer(settings: Settings, client_id: str | None = None) -> AIOKafkaProducer:
    """acks=all always; idempotence on in production (Tansu rejects InitProducerId, so off in tests)."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=client_id or f"zjtx-{settings.service}",
        acks="all",
        enable_idempotence=settings.kafka_idempotence,
        linger_ms=0,  # the outbox relay batches itself: waiting for more records only delays each hop
        max_batch_size=256 * 1024,
        request_timeout_ms=15000,
        retry_backoff_ms=200,
        **security_options(settings),
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
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        **security_options(settings),
    )


async def provision_topics(
    settings: Settings, topics: Iterable[str] = ALL_TOPICS, attempts: int = 30, *, repair: bool = False
) -> None:
    """Create the declared topics (idempotent). Retries while the broker comes up.

    ``repair``: also delete and create again a topic whose partitions are not the declared count. Only for a
    broker that just (re)started empty (Tansu keeps nothing across a restart, and a client asking for an unknown
    topic makes it auto-create one with 4 partitions): such a topic holds no record yet. The relay holds the
    rows of a topic with the wrong partitions until then (``TopicGuard``). A repair returns only once every topic
    is there as declared: a running service's client asking for a topic between its deletion and its creation
    auto-creates it again (the chaos run: two topics left with 4 partitions, their outboxes held for good)."""
    wanted = list(topics)
    for attempt in range(1, attempts + 1):
        admin = make_admin(settings)
        try:
            await admin.start()
            existing = {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics()}
            wrong = [t for t in wanted if t in existing and existing[t] != settings.kafka_partitions]
            if repair and wrong:
                await admin.delete_topics(wrong)
                log.warning("topics with other partitions than declared created again", extra={"topics": wrong})
            missing = [t for t in wanted if t not in existing or (repair and t in wrong)]
            if missing:
                new = [NewTopic(t, settings.kafka_partitions, settings.kafka_replication) for t in missing]
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics(new)
                log.info("topics provisioned", extra={"topics": missing})
            if not repair:
                return
            existing = {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics()}
            still = {t: existing.get(t) for t in wanted if existing.get(t) != settings.kafka_partitions}
            if not still:
                return
            if attempt == attempts:
                raise KafkaError(f"topics not as declared after {attempts} repairs: {still}")
            log.warning("topics not as declared after the repair (auto-created meanwhile?), again: %s", still)
            await asyncio.sleep(min(2.0, 0.1 * attempt))
        except (KafkaError, OSError) as exc:
            if attempt == attempts:
                raise
            log.warning("broker not ready (%s), retrying", exc)
            await asyncio.sleep(min(2.0, 0.1 * attempt))
        finally:
            await admin.close()


class TopicsNotReady(Exception):
    """A topic the relay would publish to is missing or has other partitions than declared: the rows are held."""


class TopicGuard:
    """Makes sure a publish lands on a topic that exists with the declared partitions.

    Tansu loses its topics on restart and auto-creates an unknown topic (with 4 partitions) when a client asks
    for it; records produced into such a topic were lost to consumers. The relay asks the guard before it
    publishes a batch (missing topics are created with the declared partitions) and again once the broker
    acknowledged it (the topics must still be there; otherwise the batch is sent again). The check reads the
    metadata of all topics, which never auto-creates one. A topic with other partitions than declared is not
    repaired (it may hold records): its rows stay in the outbox and the relay logs why (``TopicsNotReady``)."""

    def __init__(
        self, bootstrap: str, partitions: int, replication: int = 1, security: dict[str, Any] | None = None,
        ttl: float = 5.0,
    ) -> None:
        self.bootstrap = bootstrap
        self.partitions = partitions
        self.replication = replication
        self.security = security or {}
        self.ttl = ttl
        # what the last metadata read found (topic → partitions), over which connections, and when
        self._known: dict[str, list[int]] = {}
        self._links: tuple[object, ...] | None = None
        self._at = 0.0

    def forget(self) -> None:
        """Drop what was found: the next check reads the metadata (the relay calls it after a failed batch)."""
        self._known, self._links = {}, None

    @classmethod
    def from_settings(cls, settings: Settings) -> TopicGuard:
        return cls(settings.kafka_bootstrap, settings.kafka_partitions, settings.kafka_replication,
                   security_options(settings))

    async def check(
        self, producer: AIOKafkaProducer, topics: Iterable[str], *, create: bool = True
    ) -> dict[str, list[int]]:
        """Each topic's partitions (sorted), once all exist with the declared count; else ``TopicsNotReady``.

        Without a metadata read when the topics were found within ``ttl`` seconds over the producer's same live
        connections (``same_live_links``: a broker restart breaks them). The check before and after each batch
        was two metadata round trips per batch, ~2 per 1,000 events the registry's relay published in the
        re-evaluation bench."""
        wanted = set(topics)
        known = self._known
        if (wanted <= known.keys() and time.monotonic() - self._at < self.ttl
                and same_live_links(producer, self._links)):
            return {t: known[t] for t in wanted}
        self.forget()
        cluster = await producer.client.fetch_all_metadata()
        missing = sorted(t for t in wanted if not cluster.partitions_for_topic(t))
        if missing:
            if not create:
                raise TopicsNotReady(f"topics vanished after the publish (broker restarted?): {missing}")
            await self._create(missing)
            cluster = await producer.client.fetch_all_metadata()
        found = {t: sorted(cluster.partitions_for_topic(t) or ()) for t in wanted}
        wrong = {t: len(p) for t, p in found.items() if len(p) != self.partitions}
        if wrong:
            raise TopicsNotReady(
                f"topics without their declared {self.partitions} partitions (auto-created?): {wrong}"
            )
        # the connections after the read (it may open one): a broker that restarted since broke one of them,
        # which shows as not connected, or replaced, at the next check
        self._known, self._links, self._at = found, broker_links(producer), time.monotonic()
        return found

    async def _create(self, topics: list[str]) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=10000, **self.security)
        try:
            await admin.start()
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([NewTopic(t, self.partitions, self.replication) for t in topics])
            log.warning("relay provisioned missing topics", extra={"topics": topics})
        finally:
            await admin.close()
