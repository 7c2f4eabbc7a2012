"""Consumed events: each handler parses the payload with its consumer contract (``contracts.CONSUMED``; a
malformed one fails validation and the consumer dead-letters it) and calls one use case of ``app/``, in the
consumer's transaction.

- The evaluation service's recognitions → the current-tiers read model (``app/recognitions.py``).
- The evaluation service's completed evaluations → entry into the county pool by rule result
  (``app/pools.py``; a batch handler, set-based, for re-evaluations).
- The notification service's commissioner assignments → the current-assignment read model (commissioner scope,
  ``app/commissioners.py``).
- The agency feeds (市场监管, 税务) → ``events/agency_handlers.py``.
"""

from __future__ import annotations

from pydantic import TypeAdapter
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.app import commissioners, pools, recognitions
from services.registry.events import contracts as ev
from services.registry.events.agency_handlers import AGENCY_HANDLERS
from shared.events.consumer import Handler
from shared.events.envelope import CloudEvent


async def on_recognised(session: AsyncSession, event: CloudEvent) -> None:
    await recognitions.recognised(session, ev.TierRecognised.model_validate(event.data), event.regioncode)


async def on_expired(session: AsyncSession, event: CloudEvent) -> None:
    await recognitions.ended(session, ev.TierExpired.model_validate(event.data), event.regioncode)


async def on_revoked(session: AsyncSession, event: CloudEvent) -> None:
    await recognitions.ended(session, ev.TierRevoked.model_validate(event.data), event.regioncode)


# one validation call for a batch (an invalid payload fails it: the consumer then applies the events one by one,
# and dead-letters that one alone)
_COMPLETED_BATCH = TypeAdapter(list[ev.EvaluationCompleted])


async def on_evaluation_completed_many(session: AsyncSession, events: list[CloudEvent]) -> None:
    payloads = _COMPLETED_BATCH.validate_python([event.data for event in events])
    await pools.enter_by_rule_results(session, list(zip(events, payloads, strict=True)))


async def on_evaluation_completed(session: AsyncSession, event: CloudEvent) -> None:
    await on_evaluation_completed_many(session, [event])


async def on_commissioner_assigned(session: AsyncSession, event: CloudEvent) -> None:
    data = ev.CommissionerAssigned.model_validate(event.data)
    await commissioners.assigned(session, data, event.regioncode, event.time, event.id)


async def on_commissioner_unavailable(session: AsyncSession, event: CloudEvent) -> None:
    data = ev.CommissionerUnavailable.model_validate(event.data)
    await commissioners.unavailable(session, data, event.regioncode, event.time, event.id)


async def on_commissioner_released(session: AsyncSession, event: CloudEvent) -> None:
    data = ev.CommissionerReleased.model_validate(event.data)
    await commissioners.released(session, data, event.regioncode, event.time, event.id)


HANDLERS: dict[str, Handler] = {
    ev.TIER_RECOGNISED: on_recognised,
    ev.TIER_EXPIRED: on_expired,
    ev.TIER_REVOKED: on_revoked,
    ev.EVALUATION_COMPLETED: on_evaluation_completed,
    ev.COMMISSIONER_ASSIGNED: on_commissioner_assigned,
    ev.COMMISSIONER_UNAVAILABLE: on_commissioner_unavailable,
    ev.COMMISSIONER_RELEASED: on_commissioner_released,
    **AGENCY_HANDLERS,  # 市场监管 and 税务 feeds (events/agency_handlers.py)
}

BATCH_HANDLERS = {ev.EVALUATION_COMPLETED: on_evaluation_completed_many}
