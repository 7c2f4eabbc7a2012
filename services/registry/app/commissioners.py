"""Commissioner scope: the current assignment of each enterprise, kept off the notification service's
``commissioner.assigned`` / ``unavailable`` / ``released`` events (latest event wins, by time then id)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.db import commissioners as repo
from services.registry.db.models import backbone
from services.registry.events import contracts as ev
from shared.audit import record_audit


def _region(code: str | None, fallback: str | None) -> str | None:
    value = code or fallback
    return value if value and len(value) <= 6 else None


async def _assign(
    session: AsyncSession, uscc: str, values: dict[str, object], at: datetime, event_id: str
) -> None:
    row = await repo.upsert_assignment(session, uscc, values, at, event_id)
    if row is not None:
        await record_audit(session, backbone, None, "commissioner.assignment", "enterprise", uscc, after=row)


async def assigned(
    session: AsyncSession, data: ev.CommissionerAssigned, region: str | None, at: datetime, event_id: str
) -> None:
    await _assign(session, data.uscc, {
        "commissioner_id": data.commissioner_id,
        "commissioner_name": data.commissioner_name,
        "region_code": _region(data.region_code, region),
        "tier": data.tier,
        "level": data.level,
        "reason": data.reason,
    }, at, event_id)


async def _nobody(
    session: AsyncSession, data: ev.CommissionerUnavailable | ev.CommissionerReleased, region: str | None,
    at: datetime, event_id: str, title: tuple[str | None, str | None], reason: str,
) -> None:
    tier, level = title
    await _assign(session, data.uscc, {
        "commissioner_id": None,
        "commissioner_name": None,
        "region_code": _region(data.region_code, region),
        "tier": tier,
        "level": level,
        "reason": reason,
    }, at, event_id)


async def unavailable(
    session: AsyncSession, data: ev.CommissionerUnavailable, region: str | None, at: datetime, event_id: str
) -> None:
    """Nobody serves the enterprise any more (the previous commissioner, if any, lost it)."""
    await _nobody(session, data, region, at, event_id, (data.tier, data.level), "无可用服务专员")


async def released(
    session: AsyncSession, data: ev.CommissionerReleased, region: str | None, at: datetime, event_id: str
) -> None:
    """The enterprise no longer has a commissioner (no title needs one, or it was deregistered)."""
    await _nobody(session, data, region, at, event_id, (None, None), data.reason or "服务专员已解除")
