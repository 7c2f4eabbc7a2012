"""Every declared event type: archived once (the consumer's inbox) and applied to the reporting read models."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.monitor.app.projections import record
from shared.events.catalog import EVENT_TYPES
from shared.events.consumer import BatchHandler, Handler
from shared.events.envelope import CloudEvent


async def on_event(session: AsyncSession, event: CloudEvent) -> None:
    await record(session, [event])


async def on_events(session: AsyncSession, events: list[CloudEvent]) -> None:
    await record(session, events)


HANDLERS: dict[str, Handler] = dict.fromkeys(EVENT_TYPES, on_event)
BATCH_HANDLERS: dict[str, BatchHandler] = dict.fromkeys(EVENT_TYPES, on_events)
