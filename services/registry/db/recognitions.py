"""Recognitions read model (the evaluation service's titles): the writes that are not event upserts."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, update
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
