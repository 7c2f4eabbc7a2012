"""Event handlers: each runs inside the consumer's transaction (inbox row already written), reads its payload
with the tolerant contract model and calls one use case of ``app/``."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.notification.app import lifecycle
from services.notification.events import contracts as c
from shared.events.consumer import Handler
from shared.events.envelope import CloudEvent


async def on_enterprise(session: AsyncSession, event: CloudEvent) -> None:
    await lifecycle.enterprise_changed(session, c.EnterpriseChanged.model_validate(event.data))


async def on_deregistered(session: AsyncSession, event: CloudEvent) -> None:
    await lifecycle.deregistered(session, c.Deregistered.model_validate(event.data), event.id)


async def on_recognised(session: AsyncSession, event: CloudEvent) -> None:
    await lifecycle.recognised(session, c.Recognised.model_validate(event.data), event.id)


async def on_revoked(session: AsyncSession, event: CloudEvent) -> None:
    await lifecycle.ended(session, c.Ended.model_validate(event.data), event.id, revoked=True)


async def on_expired(session: AsyncSession, event: CloudEvent) -> None:
    await lifecycle.ended(session, c.Ended.model_validate(event.data), event.id, revoked=False)


async def on_recheck_due(session: AsyncSession, event: CloudEvent) -> None:
    await lifecycle.recheck_due(session, c.RecheckDue.model_validate(event.data), event.id)


async def on_review_decided(session: AsyncSession, event: CloudEvent) -> None:
    await lifecycle.review_decided(session, c.ReviewDecided.model_validate(event.data), event.id)


async def on_publicity_started(session: AsyncSession, event: CloudEvent) -> None:
    await lifecycle.publicity_started(session, c.PublicityStarted.model_validate(event.data), event.id)


async def on_evaluation_completed(session: AsyncSession, event: CloudEvent) -> None:
    await lifecycle.evaluation_completed(session, c.EvaluationCompleted.model_validate(event.data))


async def on_entitlement_approved(session: AsyncSession, event: CloudEvent) -> None:
    await lifecycle.entitlement_approved(session, c.EntitlementApproved.model_validate(event.data), event.id)


async def on_disbursement_paid(session: AsyncSession, event: CloudEvent) -> None:
    await lifecycle.disbursement_paid(session, c.DisbursementPaid.model_validate(event.data), event.id)


async def on_policy_published(session: AsyncSession, event: CloudEvent) -> None:
    await lifecycle.policy_published(session, c.PolicyPublished.model_validate(event.data))


async def on_assigned(session: AsyncSession, event: CloudEvent) -> None:
    await lifecycle.assigned(session, c.Assigned.model_validate(event.data), event.id)


HANDLERS: dict[str, Handler] = {
    c.ENTERPRISE_REGISTERED: on_enterprise,
    c.ENTERPRISE_UPDATED: on_enterprise,
    c.ENTERPRISE_DEREGISTERED: on_deregistered,
    c.TIER_RECOGNISED: on_recognised,
    c.TIER_REVOKED: on_revoked,
    c.TIER_EXPIRED: on_expired,
    c.RECHECK_DUE: on_recheck_due,
    c.REVIEW_DECIDED: on_review_decided,
    c.PUBLICITY_STARTED: on_publicity_started,
    c.EVALUATION_COMPLETED: on_evaluation_completed,
    c.ENTITLEMENT_APPROVED: on_entitlement_approved,
    c.DISBURSEMENT_PAID: on_disbursement_paid,
    c.POLICY_PUBLISHED: on_policy_published,
    c.ASSIGNED: on_assigned,
}
