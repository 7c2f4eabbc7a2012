"""Prometheus metrics of the backbone (HTTP metrics come from the app middleware)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

OUTBOX_PENDING = Gauge("outbox_pending_rows", "Outbox rows not yet published", ["service"])
OUTBOX_OLDEST_AGE = Gauge(
    "outbox_oldest_pending_age_seconds", "Age of the oldest unpublished outbox row", ["service"]
)
OUTBOX_PARKED = Gauge(
    "outbox_parked_rows", "Outbox rows parked after too many failed publish attempts (see last_error)", ["service"]
)
OUTBOX_PUBLISHED = Counter("outbox_published_total", "Outbox rows published", ["service"])
EVENTS_PROCESSED = Counter("consumer_events_processed_total", "Events applied", ["consumer", "type"])
EVENTS_DUPLICATE = Counter("consumer_events_duplicate_total", "Duplicate events skipped", ["consumer"])
EVENTS_IGNORED = Counter("consumer_events_ignored_total", "Events of types this consumer ignores", ["consumer"])
EVENTS_DLQ = Counter("consumer_events_dlq_total", "Events sent to the dead-letter topic", ["consumer", "topic"])
EVENTS_RETRIED = Counter("consumer_events_retried_total", "Retryable failures", ["consumer"])
CONSUMER_LAG = Gauge("consumer_lag", "Highwater minus position per partition", ["consumer", "topic", "partition"])
