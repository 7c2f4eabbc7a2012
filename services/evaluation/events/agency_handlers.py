"""Handlers of the feeds evaluation applies besides registry's enterprise facts: the 信用 feed (credit listed /
lifted, and the older ``listing.recorded`` for 经营异常 / 严重失信) and registry's ``enterprise.moved`` (整体迁入).
A malformed payload fails validation: the consumer dead-letters it with the reason and goes on."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.evaluation.app import credit, migration
from services.evaluation.events.contracts import CREDIT_LIFTED, CREDIT_LISTED, MOVED, EnterpriseMoved
from shared.events import agency as contracts
from shared.events.consumer import Handler
from shared.events.envelope import CloudEvent


async def on_credit_listed(session: AsyncSession, event: CloudEvent) -> None:
    p = contracts.CreditListedReader.model_validate(event.data)
    await credit.listed(session, uscc=p.uscc, region_code=p.region_code, agency=p.agency, listing=p.listing,
                        listed_on=p.listed_on, reason=p.reason, decision_no=p.decision_no)


async def on_credit_lifted(session: AsyncSession, event: CloudEvent) -> None:
    p = contracts.CreditLiftedReader.model_validate(event.data)
    await credit.lifted(session, uscc=p.uscc, region_code=p.region_code, agency=p.agency, listing=p.listing,
                        lifted_on=p.lifted_on, reason=p.reason)


async def on_moved(session: AsyncSession, event: CloudEvent) -> None:
    p = EnterpriseMoved.model_validate(event.data)
    await migration.moved(session, p.uscc, p.from_region_code, p.to_region_code, p.moved_on)


AGENCY_HANDLERS: dict[str, Handler] = {
    CREDIT_LISTED: on_credit_listed,
    CREDIT_LIFTED: on_credit_lifted,
    MOVED: on_moved,
}
