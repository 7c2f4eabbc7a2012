"""Consumers of evaluation's tier events (one DB transaction each; the consumer owns it)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.finance.app import entitlements as ents
from services.finance.events import contracts as ev
from shared.events.envelope import CloudEvent


async def on_tier_recognised(session: AsyncSession, event: CloudEvent) -> None:
    await ents.on_recognised(session, ev.TierRecognised.model_validate(event.data), arrived_on=event.time.date())


async def on_tier_revoked(session: AsyncSession, event: CloudEvent) -> None:
    await ents.on_revoked(session, ev.TierRevoked.model_validate(event.data))


async def on_tier_expired(session: AsyncSession, event: CloudEvent) -> None:
    await ents.on_expired(session, ev.TierExpired.model_validate(event.data))


HANDLERS = {
    ev.TIER_RECOGNISED: on_tier_recognised,
    ev.TIER_REVOKED: on_tier_revoked,
    ev.TIER_EXPIRED: on_tier_expired,
}
