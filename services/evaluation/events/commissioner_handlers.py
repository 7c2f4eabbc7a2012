"""Handlers of the notification service's commissioner events: the current commissioner per enterprise
(``db/commissioners.py``), which scopes what a commissioner reads in evaluation (issue 16 item 6)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.evaluation.db import commissioners
from services.evaluation.db.models import backbone
from services.evaluation.events.contracts import (
    COMMISSIONER_ASSIGNED,
    COMMISSIONER_RELEASED,
    COMMISSIONER_UNAVAILABLE,
    CommissionerAssigned,
    CommissionerReleased,
    CommissionerUnavailable,
)
from shared.audit import record_audit
from shared.events.envelope import CloudEvent


async def _set(session: AsyncSession, event: CloudEvent, uscc: str, commissioner_id: str | None) -> None:
    if await commissioners.record(session, uscc, commissioner_id, event.time, event.id):
        await record_audit(session, backbone, None, "commissioner.assignment", "enterprise", uscc,
                           after={"commissioner_id": commissioner_id, "event_type": event.type})


async def on_assigned(session: AsyncSession, event: CloudEvent) -> None:
    data = CommissionerAssigned.model_validate(event.data)
    await _set(session, event, data.uscc, data.commissioner_id)


async def on_unavailable(session: AsyncSession, event: CloudEvent) -> None:
    """Nobody serves the enterprise any more (the previous commissioner, if any, lost it)."""
    data = CommissionerUnavailable.model_validate(event.data)
    await _set(session, event, data.uscc, None)


async def on_released(session: AsyncSession, event: CloudEvent) -> None:
    """The enterprise no longer has a commissioner (no title needs one, or it was deregistered)."""
    data = CommissionerReleased.model_validate(event.data)
    await _set(session, event, data.uscc, None)


COMMISSIONER_HANDLERS = {
    COMMISSIONER_ASSIGNED: on_assigned,
    COMMISSIONER_UNAVAILABLE: on_unavailable,
    COMMISSIONER_RELEASED: on_released,
}
