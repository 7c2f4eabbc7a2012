"""Disbursement (payment instruction) repository: claim with a lease, conditional state changes, queries."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.finance.db.models import DisbursementRow
from shared.leases import holder_gone


async def of_entitlement(
    session: AsyncSession, entitlement_id: uuid.UUID, *, for_update: bool = False
) -> DisbursementRow | None:
    stmt = select(DisbursementRow).where(DisbursementRow.entitlement_id == entitlement_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def of_entitlements(session: AsyncSession, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, DisbursementRow]:
    wanted = list(ids)
    if not wanted:
        return {}
    rows = (await session.execute(select(DisbursementRow).where(DisbursementRow.entitlement_id.in_(wanted)))).scalars()
    return {d.entitlement_id: d for d in rows}


async def get(session: AsyncSession, disbursement_id: uuid.UUID, *, for_update: bool = False) -> DisbursementRow | None:
    return await session.get(DisbursementRow, disbursement_id, with_for_update=for_update)


async def listing(session: AsyncSession, *, state: str | None, uscc: str | None) -> list[DisbursementRow]:
    stmt = select(DisbursementRow).order_by(DisbursementRow.created_at.desc()).limit(1000)
    if state:
        stmt = stmt.where(DisbursementRow.state == state)
    if uscc is not None:
        stmt = stmt.where(DisbursementRow.uscc == uscc)
    return list((await session.execute(stmt)).scalars())


async def claim_due(
    session: AsyncSession, lease_seconds: float, claimed_by: int | None = None
) -> DisbursementRow | None:
    """Claim the most overdue pending/sent instruction (``SKIP LOCKED``), mark it sent with a lease: the time
    (``next_attempt_at``) and the claiming worker's lease key ``claimed_by``. A 'sent' instruction is due when its
    time lease ran out or at once when the worker that claimed it is gone (``shared.leases``)."""
    now = datetime.now(UTC)
    row = (
        await session.execute(
            select(DisbursementRow)
            .where(
                DisbursementRow.state.in_(("pending", "sent")),
                or_(
                    DisbursementRow.next_attempt_at <= now,
                    (DisbursementRow.state == "sent") & holder_gone(DisbursementRow.claimed_by),
                ),
            )
            .order_by(DisbursementRow.next_attempt_at)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
    ).scalar_one_or_none()
    if row is None:
        return None
    row.state = "sent"
    row.attempts += 1
    row.next_attempt_at = now + timedelta(seconds=lease_seconds)
    row.claimed_by = claimed_by
    row.updated_at = now
    return row


async def update_if_sent(session: AsyncSession, disbursement_id: uuid.UUID, values: dict[str, Any]) -> bool:
    """``UPDATE … WHERE state='sent'``: False when another worker (or a retry) already recorded it."""
    got = (
        await session.execute(
            update(DisbursementRow)
            .where(DisbursementRow.id == disbursement_id, DisbursementRow.state == "sent")
            .values(**values)
            .returning(DisbursementRow.id)
        )
    ).first()
    return got is not None


async def paid_between(session: AsyncSession, start: datetime, end: datetime) -> list[DisbursementRow]:
    return list(
        (
            await session.execute(
                select(DisbursementRow).where(
                    DisbursementRow.state == "paid", DisbursementRow.paid_at >= start, DisbursementRow.paid_at < end
                )
            )
        ).scalars()
    )


async def by_key(session: AsyncSession, key: str) -> DisbursementRow | None:
    return (
        await session.execute(select(DisbursementRow).where(DisbursementRow.idempotency_key == key))
    ).scalar_one_or_none()
