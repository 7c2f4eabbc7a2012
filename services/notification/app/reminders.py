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

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notification.app.notices import commissioner_recipient, create_notice, enterprise_recipient
from services.notification.db import assignments as assignment_repo
from services.notification.db import enterprises as enterprise_repo
from services.notification.db import reminders as reminder_repo
from services.notification.domain.schedule import (
    data_update_reminder,
    data_update_reminder_after,
    validity_reminders,
)
from shared.tiers import tier_name

log = logging.getLogger(__name__)


async def schedule_for_title(
    session: AsyncSession, *, recognition_id: str, uscc: str, tier: str, valid_to: date | None, now: datetime
) -> None:
    """A new title's reminders: validity expiring (90/30 days) and the next annual data update."""
    rows: list[dict[str, Any]] = []
    if valid_to is not None:
        for days, due in validity_reminders(valid_to, now):
            rows.append({
                "key": f"validity:{recognition_id}:{days}", "kind": "validity_expiring", "uscc": uscc,
                "recognition_id": recognition_id, "due_at": due,
                "payload": {"days": days, "tier": tier, "valid_to": valid_to.isoformat()},
            })
    deadline, due = data_update_reminder(now)
    rows.append({
        "key": f"data_update:{uscc}:{deadline.year}", "kind": "data_update_deadline", "uscc": uscc,
        "recognition_id": None, "due_at": due, "payload": {"deadline": deadline.isoformat()},
    })
    await reminder_repo.schedule(session, rows)


async def _send(session: AsyncSession, row: dict[str, Any], now: datetime) -> bool:
    uscc = row["uscc"]
    payload = row["payload"] or {}
    if row["kind"] == "validity_expiring":
        if await enterprise_repo.recognition_status(session, row["recognition_id"]) != "active":
            return False
        template = "validity_expiring"
        variables: dict[str, Any] = {
            "tier_name": tier_name(payload.get("tier", "")),
            "valid_to": payload.get("valid_to"), "days": payload.get("days"),
        }
    else:
        if not await enterprise_repo.has_active_title(session, uscc):
            return False
        template = "data_update_deadline"
        variables = {"deadline": payload.get("deadline")}
        # Next year's reminder, scheduled now so the chain survives restarts.
        deadline, due = data_update_reminder_after(date.fromisoformat(payload["deadline"]))
        await reminder_repo.schedule(session, [{
            "key": f"data_update:{uscc}:{deadline.year}", "kind": "data_update_deadline", "uscc": uscc,
            "due_at": due, "payload": {"deadline": deadline.isoformat()},
        }])
    key = f"reminder:{row['key']}"
    rec, evars = await enterprise_recipient(session, uscc)
    allvars = {**evars, **variables}
    await create_notice(session, dedup_key=key, recipient=rec, template=template, variables=allvars, uscc=uscc, now=now)
    cid = await assignment_repo.assigned_commissioner(session, uscc)
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
        for row in await reminder_repo.claim_due(session, now, batch):
            ok = await _send(session, dict(row), now)
            sent += ok
            await reminder_repo.finish(session, row["id"], "done" if ok else "cancelled", now)
    return sent


async def scheduler_worker(runtime: Any, interval: float = 1.0) -> None:
    while not runtime.stopping.is_set():
        try:
            await run_due_reminders(runtime.session_factory)
        except Exception:
            log.exception("reminder pass failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(runtime.stopping.wait(), timeout=interval)
