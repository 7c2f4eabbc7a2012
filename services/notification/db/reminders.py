"""Repository of the scheduled reminders (``reminders``), claimed with FOR UPDATE SKIP LOCKED."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notification.db.models import reminders


async def schedule(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
    """Add reminders; one whose key exists already is kept as it is."""
    if rows:
        await session.execute(insert(reminders).values(list(rows)).on_conflict_do_nothing(index_elements=["key"]))


async def cancel_for_enterprise(session: AsyncSession, uscc: str) -> None:
    await session.execute(
        update(reminders).where(reminders.c.uscc == uscc, reminders.c.status == "pending").values(status="cancelled")
    )


async def cancel_for_recognition(session: AsyncSession, recognition_id: str) -> None:
    await session.execute(
        update(reminders).where(reminders.c.recognition_id == recognition_id, reminders.c.status == "pending")
        .values(status="cancelled")
    )


async def claim_due(session: AsyncSession, now: datetime, batch: int) -> Sequence[RowMapping]:
    return (
        await session.execute(
            select(reminders)
            .where(reminders.c.status == "pending", reminders.c.due_at <= now)
            .order_by(reminders.c.due_at, reminders.c.id)
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
    ).mappings().all()


async def finish(session: AsyncSession, reminder_id: int, status: str, now: datetime) -> None:
    await session.execute(update(reminders).where(reminders.c.id == reminder_id).values(status=status, done_at=now))
