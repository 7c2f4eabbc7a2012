"""Repository of the policies known from finance (``policies``) and the pushes made (``policy_pushes``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import RowMapping, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notification.db.models import policies, policy_pushes


async def upsert(session: AsyncSession, policy_id: str, values: Mapping[str, Any]) -> None:
    await session.execute(
        insert(policies).values(policy_id=policy_id, **values)
        .on_conflict_do_update(index_elements=["policy_id"], set_=dict(values))
    )


async def all_policies(session: AsyncSession) -> Sequence[RowMapping]:
    return (await session.execute(select(policies).order_by(policies.c.policy_id))).mappings().all()


async def claim_push(session: AsyncSession, uscc: str, policy_id: str, reason: str) -> bool:
    """Record the push of ``policy_id`` to ``uscc``; False when it was pushed before."""
    inserted = (
        await session.execute(
            insert(policy_pushes).values(uscc=uscc, policy_id=policy_id, reason=reason)
            .on_conflict_do_nothing().returning(policy_pushes.c.uscc)
        )
    ).first()
    return inserted is not None


async def set_push_notice(session: AsyncSession, uscc: str, policy_id: str, notice_id: int | None) -> None:
    await session.execute(
        update(policy_pushes).where(policy_pushes.c.uscc == uscc, policy_pushes.c.policy_id == policy_id)
        .values(notice_id=notice_id)
    )
