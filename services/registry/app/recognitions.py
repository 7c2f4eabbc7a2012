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
from services.registry.events import contracts as ev
from shared.audit import audit_row, record_audit, record_audits

log = logging.getLogger(__name__)

# the worker looks at least this often (a clock change, a missed midnight)
MAX_SLEEP = 3600.0


def initial_status(valid_from: date | None, as_of: date) -> str:
    """``upcoming`` for a title that takes effect after ``as_of``, else ``valid``."""
    return "upcoming" if valid_from is not None and valid_from > as_of else "valid"


def _title(data: ev.TierRecognised | ev.TierExpired | ev.TierRevoked, region: str | None) -> dict[str, Any]:
    """Which title of whom: the columns every recognition event sets."""
    return {"recognition_id": data.recognition_id, "uscc": data.uscc, "region_code": data.region_code or region,
            "tier": data.tier, "level": data.level}


async def recognised(session: AsyncSession, data: ev.TierRecognised, region: str | None) -> None:
    """A title the evaluation service announced (``region``: the event's, when the payload names none). State is
    kept per recognition id, so redelivery and reordering are harmless: it never resurrects a recognition that
    already ended, and fills in the facts of one whose end event came first."""
    values = {
        **_title(data, region),
        "ruleset_id": data.ruleset_id,
        "batch_year": data.batch_year,
        "announced_on": data.announced_on,
        "valid_from": data.valid_from,
        "valid_to": data.valid_to,
        # a title announced for a later day is upcoming until then (promoted by the promotion worker)
        "status": initial_status(data.valid_from, today()),
    }
    await repo.upsert_recognised(session, values)
    await repo.fill_if_ended(session, values)
    await record_audit(session, backbone, None, "tier.recognised", "recognition", data.recognition_id, after=values)


async def ended(session: AsyncSession, data: ev.TierExpired | ev.TierRevoked, region: str | None) -> None:
    """A title expired or revoked (revoked is final; an expiry never overwrites it)."""
    if isinstance(data, ev.TierRevoked):
        status, ended_on, ground = "revoked", data.revoked_on, data.ground
    else:
        status, ended_on, ground = "expired", data.expired_on, None
    values = {
        **_title(data, region),
        "status": status,
        "ended_on": ended_on,
        "ground": ground,
    }
    await repo.upsert_ended(session, values)
    await record_audit(session, backbone, None, f"tier.{status}", "recognition", data.recognition_id, after=values)


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
