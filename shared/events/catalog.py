"""Every topic and event type of zjtx, declared once.

Each service publishes to its own topic; the key is the enterprise's USCC so one enterprise's events stay
ordered within a partition. Types carry a version suffix; a published v1 payload only gains optional fields.
"""

from __future__ import annotations

from shared.services import descriptors

# The installed services (see ``shared.services``), in port order.
SERVICES: tuple[str, ...] = tuple(d.name for d in descriptors())
# Producers of topics: the services that publish plus external agency feeds (信用、应急、市场监管 …).
PRODUCERS = (*(d.name for d in descriptors() if d.publishes), "agency")


def topic_of(service: str) -> str:
    return f"zjtx.{service}.events"


def physical(topic: str, namespace: str = "") -> str:
    """The broker's name for a declared topic: ``<namespace>.<topic>`` when a namespace is configured."""
    return f"{namespace}.{topic}" if namespace else topic


def dlq_of(topic: str) -> str:
    return f"{topic}.dlq"


TOPICS: tuple[str, ...] = tuple(topic_of(s) for s in PRODUCERS)
ALL_TOPICS: tuple[str, ...] = TOPICS + tuple(dlq_of(t) for t in TOPICS)

EVENT_TYPES: frozenset[str] = frozenset(
    {
        # registry
        "zjtx.registry.enterprise.registered.v1",
        "zjtx.registry.enterprise.updated.v1",
        "zjtx.registry.enterprise.deregistered.v1",
        "zjtx.registry.enterprise.moved.v1",
        "zjtx.registry.indicators.reported.v1",
        "zjtx.registry.pool.entered.v1",
        "zjtx.registry.pool.exited.v1",
        # evaluation
        "zjtx.evaluation.evaluation.completed.v1",
        "zjtx.evaluation.application.submitted.v1",
        "zjtx.evaluation.review.decided.v1",
        "zjtx.evaluation.publicity.started.v1",
        "zjtx.evaluation.tier.recognised.v1",
        "zjtx.evaluation.tier.expired.v1",
        "zjtx.evaluation.tier.revoked.v1",
        "zjtx.evaluation.recheck.due.v1",
        "zjtx.evaluation.ruleset.published.v1",
        # finance
        "zjtx.finance.policy.published.v1",
        "zjtx.finance.entitlement.created.v1",
        "zjtx.finance.entitlement.approved.v1",
        "zjtx.finance.disbursement.paid.v1",
        "zjtx.finance.disbursement.failed.v1",
        "zjtx.finance.recovery.raised.v1",
        "zjtx.finance.budget.changed.v1",
        # notification
        "zjtx.notification.commissioner.assigned.v1",
        "zjtx.notification.commissioner.unavailable.v1",
        "zjtx.notification.commissioner.released.v1",
        # external agency feeds (信用、应急、市场监管、税务) on zjtx.agency.events: shared/events/agency.py
        "zjtx.agency.listing.recorded.v1",
        "zjtx.agency.enterprise.deregistered.v1",
        "zjtx.agency.enterprise.renamed.v1",
        "zjtx.agency.enterprise.moved.v1",
        "zjtx.agency.enterprise.representative_changed.v1",
        "zjtx.agency.tax.reported.v1",
        "zjtx.agency.credit.listed.v1",
        "zjtx.agency.credit.lifted.v1",
    }
)
