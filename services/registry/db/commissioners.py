"""Commissioner assignments read model (the notification service's ``commissioner.*`` events)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.db.models import CommissionerAssignment


async def upsert_assignment(
    session: AsyncSession, uscc: str, values: dict[str, Any], event_time: datetime, event_id: str
) -> dict[str, Any] | None:
    """Set the enterprise's current assignment unless a newer event (time, then id) already set it; the row
    written, or None when a newer one stands."""
    row = {"uscc": uscc, **values, "event_time": event_time, "event_id": event_id}
    stmt = insert(CommissionerAssignment).values(**row)
    ca = CommissionerAssignment
    newer = or_(
        ca.event_time < stmt.excluded.event_time,
        and_(ca.event_time == stmt.excluded.event_time, ca.event_id < stmt.excluded.event_id),
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["uscc"],
        set_={**{k: getattr(stmt.excluded, k) for k in row if k != "uscc"}, "updated_at": func.now()},
        where=newer,
    )
    applied = (await session.execute(stmt.returning(ca.uscc))).first()
    return None if applied is None else row
