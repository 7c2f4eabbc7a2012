"""Every topic and event type of zjtx, declared once.

Each service publishes to its own topic (its event types are declared by its contracts, see
``shared.events.contracts``); the key is the enterprise's USCC so one enterprise's events stay
ordered within a partition. Types carry a version suffix; a published v1 payload only gains optional fields.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

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

@lru_cache
def event_types() -> frozenset[str]:
    """Every declared event type: what the services' contracts publish (``services/<name>/events/contracts.py``
    ``PUBLISHED``) and the external agency feeds (``shared/events/agency.py``), see ``shared.events.contracts``."""
    from shared.events.contracts import contracts  # it reads the services' contracts, which import shared.events

    return frozenset(contracts())


def __getattr__(name: str) -> Any:
    if name == "EVENT_TYPES":  # computed on first use: the contracts modules import shared.events themselves
        return event_types()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
