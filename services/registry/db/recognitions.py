"""Recognitions read model (the evaluation service's titles): the event upserts and the promotion of due titles."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.db.models import Recognition


async def promote_due(session: AsyncSession, as_of: date) -> list[dict[str, Any]]:
    """Upcoming titles whose ``valid_from`` has come become valid; the promoted rows."""
    rows = await session.execute(
        update(Recognition)
        .where(Recognition.status == "upcoming", Recognition.valid_from <= as_of)
        .values(status="valid", updated_at=func.now())
        .returning(
            Recognition.recognition_id, Recognition.uscc, Recognition.tier, Recognition.level, Recognition.valid_from
        )
    )
    return [dict(r._mapping) for r in rows.all()]


# the facts a recognised event carries (an end event's row is filled with them if it came first)
RECOGNISED_FIELDS = ("uscc", "region_code", "tier", "level", "ruleset_id", "batch_year", "announced_on", "valid_from",
                     "valid_to")


async def upsert_recognised(session: AsyncSession, values: dict[str, Any]) -> None:
    """Insert or refresh a recognition from its recognised event; an ended one keeps its end state."""
    stmt = insert(Recognition).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["recognition_id"],
        set_={**{k: getattr(stmt.excluded, k) for k in (*RECOGNISED_FIELDS, "status")}, "updated_at": func.now()},
        where=Recognition.status.in_(("valid", "upcoming")),
    )
    await session.execute(stmt)


async def fill_if_ended(session: AsyncSession, values: dict[str, Any]) -> None:
    """If the end event came first, the row exists without dates: fill them without changing the status."""
    await session.execute(
        update(Recognition)
        .where(
            Recognition.recognition_id == values["recognition_id"],
            Recognition.status.not_in(("valid", "upcoming")),
            Recognition.valid_from.is_(None),
        )
        .values(
            valid_from=values["valid_from"],
            valid_to=values["valid_to"],
            ruleset_id=values["ruleset_id"],
            batch_year=values["batch_year"],
            announced_on=values["announced_on"],
        )
    )


async def upsert_ended(session: AsyncSession, values: dict[str, Any]) -> None:
    """Record an end (``expired`` / ``revoked``, in ``values``); revoked is final and an expiry does not
    overwrite it. An end that arrives before its recognised event creates the row in its final state."""
    status = values["status"]
    stmt = insert(Recognition).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["recognition_id"],
        set_={"status": status, "ended_on": values["ended_on"], "ground": values["ground"],
              "updated_at": func.now()},
        where=(Recognition.status != "revoked") if status == "expired" else None,
    )
    await session.execute(stmt)
