"""Read model of the notification service's current commissioner (服务专员) per enterprise, kept off its
``commissioner.assigned`` / ``unavailable`` / ``released`` events: a commissioner reads in evaluation only the
enterprises currently assigned to them (``sub`` = commissioner id), as in the registry."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.evaluation.db.models import CommissionerAssignment


def assigned_to(commissioner_id: str) -> Select[str]:
    """The USCCs currently assigned to ``commissioner_id`` (for ``column.in_(…)``)."""
    ca = CommissionerAssignment
    return select(ca.uscc).where(ca.commissioner_id == commissioner_id)


async def is_assigned(session: AsyncSession, uscc: str, commissioner_id: str) -> bool:
    ca = CommissionerAssignment
    q = select(ca.uscc).where(ca.uscc == uscc, ca.commissioner_id == commissioner_id)
    return (await session.execute(q)).first() is not None


async def record(
    session: AsyncSession, uscc: str, commissioner_id: str | None, event_time: datetime, event_id: str
) -> bool:
    """Set the enterprise's current commissioner unless a newer event (time, then id) already did; whether it
    was applied."""
    ca = CommissionerAssignment
    stmt = insert(ca).values(uscc=uscc, commissioner_id=commissioner_id, event_time=event_time, event_id=event_id)
    newer = or_(
        ca.event_time < stmt.excluded.event_time,
        and_(ca.event_time == stmt.excluded.event_time, ca.event_id < stmt.excluded.event_id),
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["uscc"],
        set_={"commissioner_id": stmt.excluded.commissioner_id, "event_time": stmt.excluded.event_time,
              "event_id": stmt.excluded.event_id, "updated_at": func.now()},
        where=newer,
    )
    return (await session.execute(stmt.returning(ca.uscc))).first() is not None
