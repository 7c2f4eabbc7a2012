"""Handlers of the agency feeds registry applies (市场监管, 税务): each parses the payload with the tolerant
reader of ``shared.events.agency`` (a malformed one fails validation: the consumer dead-letters it with the
reason and goes on) and calls one use case of ``app/agency.py``."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.app import agency as cases
from shared.events import agency as contracts
from shared.events.consumer import Handler
from shared.events.envelope import CloudEvent


async def on_deregistered(session: AsyncSession, event: CloudEvent) -> None:
    await cases.deregistered(session, contracts.EnterpriseDeregisteredReader.model_validate(event.data))


async def on_renamed(session: AsyncSession, event: CloudEvent) -> None:
    await cases.renamed(session, contracts.EnterpriseRenamedReader.model_validate(event.data))


async def on_moved(session: AsyncSession, event: CloudEvent) -> None:
    await cases.moved(session, contracts.EnterpriseMovedReader.model_validate(event.data))


async def on_representative_changed(session: AsyncSession, event: CloudEvent) -> None:
    await cases.representative_changed(session, contracts.RepresentativeChangedReader.model_validate(event.data))


async def on_tax_reported(session: AsyncSession, event: CloudEvent) -> None:
    await cases.tax_reported(session, contracts.TaxReportedReader.model_validate(event.data))


AGENCY_HANDLERS: dict[str, Handler] = {
    contracts.DEREGISTERED: on_deregistered,
    contracts.RENAMED: on_renamed,
    contracts.MOVED: on_moved,
    contracts.REPRESENTATIVE_CHANGED: on_representative_changed,
    contracts.TAX_REPORTED: on_tax_reported,
}
