"""Scheduled reminders: rows in ``reminders`` with a due time, claimed with FOR UPDATE SKIP LOCKED.

The notices and the 'done' mark commit in the same transaction as the claim, so any number of instances
send each reminder once, and a restart simply picks up what is still pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notification.db.models import assignments, recognitions, reminders
from services.notification.domain.assignment import TIER_NAMES
from services.notification.domain.schedule import data_update_reminder_after
from services.notification.notify import commissioner_recipient, create_notice, enterprise_recipient

log = logging.getLogger(__name__)


async def _send(session: AsyncSession, row: dict[str, Any], now: datetime) -> bool:
    uscc = row["uscc"]
    payload = row["payload"] or {}
    if row["kind"] == "validity_expiring":
        status = (
            await session.execute(
                select(recognitions.c.status).where(recognitions.c.recognition_id == row["recognition_id"])
            )
        ).scalar()
        if status != "active":
            return False
        template = "validity_expiring"
        variables: dict[str, Any] = {
            "tier_name": TIER_NAMES.get(payload.get("tier", ""), payload.get("tier", "")),
            "valid_to": payload.get("valid_to"), "days": payload.get("days"),
        }
    else:
        active = (
            await session.execute(
                select(recognitions.c.recognition_id)
                .where(recognitions.c.uscc == uscc, recognitions.c.status == "active").limit(1)
            )
        ).first()
        if active is None:
            return False
        template = "data_update_deadline"
        variables = {"deadline": payload.get("deadline")}
        # Next year's reminder, scheduled now so the chain survives restarts.
        deadline, due = data_update_reminder_after(date.fromisoformat(payload["deadline"]))
        await session.execute(
            insert(reminders).values(
                key=f"data_update:{uscc}:{deadline.year}", kind="data_update_deadline", uscc=uscc, due_at=due,
                payload={"deadline": deadline.isoformat()},
            ).on_conflict_do_nothing(index_elements=["key"])
        )
    key = f"reminder:{row['key']}"
    rec, evars = await enterprise_recipient(session, uscc)
    allvars = {**evars, **variables}
    await create_notice(session, dedup_key=key, recipient=rec, template=template, variables=allvars, uscc=uscc, now=now)
    cid = (
        await session.execute(
            select(assignments.c.commissioner_id).where(assignments.c.uscc == uscc, assignments.c.status == "assigned")
        )
    ).scalar()
    if cid:
        found = await commissioner_recipient(session, cid)
        if found is not None:
            await create_notice(session, dedup_key=key, recipient=found[0], template=template,
                                variables={**allvars, **found[1]}, uscc=uscc, now=now)
    return True


async def run_due_reminders(
    session_factory: async_sessionmaker[AsyncSession], *, now: datetime | None = None, batch: int = 100
) -> int:
    """One pass; returns how many reminders this instance sent."""
    now = now or datetime.now(UTC)
    sent = 0
    async with session_factory() as session, session.begin():
        rows = (
            await session.execute(
                select(reminders)
                .where(reminders.c.status == "pending", reminders.c.due_at <= now)
                .order_by(reminders.c.due_at, reminders.c.id)
                .limit(batch)
                .with_for_update(skip_locked=True)
            )
        ).mappings().all()
        for row in rows:
            ok = await _send(session, dict(row), now)
            sent += ok
            await session.execute(
                update(reminders).where(reminders.c.id == row["id"])
                .values(status="done" if ok else "cancelled", done_at=now)
            )
    return sent


async def scheduler_worker(runtime: Any, interval: float = 1.0) -> None:
    while not runtime.stopping.is_set():
        try:
            await run_due_reminders(runtime.session_factory)
        except Exception:
            log.exception("reminder pass failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(runtime.stopping.wait(), timeout=interval)
