"""Titles held as upcoming until their ``valid_from`` (issue 15 item 2): one rule everywhere, a title counts
from the day it takes effect. The recognised-event handler stores a future title as ``upcoming``; the
promotion worker makes it ``valid`` on its day (scheduled, never on read), so ``current_tiers``, ``?tier=`` and
the nomination rules see it from then on."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.db import recognitions as repo
from services.registry.db.models import backbone
from services.registry.domain.dates import today
from shared.audit import audit_row, record_audits

log = logging.getLogger(__name__)

# the worker looks at least this often (a clock change, a missed midnight)
MAX_SLEEP = 3600.0


def initial_status(valid_from: date | None, as_of: date) -> str:
    """``upcoming`` for a title that takes effect after ``as_of``, else ``valid``."""
    return "upcoming" if valid_from is not None and valid_from > as_of else "valid"


async def promote_due(session: AsyncSession, as_of: date) -> int:
    """Promote the upcoming titles due by ``as_of`` (one audit row each); how many."""
    rows = await repo.promote_due(session, as_of)
    await record_audits(
        session,
        backbone,
        [
            audit_row(backbone, None, "tier.effective", "recognition", r["recognition_id"],
                      before={"status": "upcoming"}, after={**r, "status": "valid"})
            for r in rows
        ],
    )
    return len(rows)


def seconds_to_next_day(now: datetime) -> float:
    tomorrow = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    return max(1.0, (tomorrow - now).total_seconds() + 1)


async def promotion_worker(runtime: Any) -> None:
    """Service worker: promotes due titles at start and then just after each midnight (UTC)."""
    factory = runtime.session_factory
    while not runtime.stopping.is_set():
        try:
            async with factory() as s, s.begin():
                n = await promote_due(s, today())
            if n:
                log.info("%d upcoming titles took effect", n)
        except Exception as exc:
            log.warning("title promotion failed: %s", exc)
        wait = min(MAX_SLEEP, seconds_to_next_day(datetime.now(UTC)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(runtime.stopping.wait(), timeout=wait)
