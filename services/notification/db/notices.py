"""Repository of the inbox (``notices``), the outbound sends (``deliveries``) and ``preferences``.

Dedup is by construction: ``notices`` is unique on (dedup_key, recipient) and ``deliveries`` on
(dedup_key, recipient, channel), both inserted with ON CONFLICT DO NOTHING in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, RowMapping, and_, func, or_, select, true, update
from sqlalchemy.dialects.postgresql import aggregate_order_by, insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notification.db.models import deliveries, notices, preferences
from shared.leases import holder_gone


async def insert_notice(session: AsyncSession, values: Mapping[str, Any]) -> int | None:
    """The new notice's id; None when this (dedup_key, recipient) already has one."""
    notice_id = (
        await session.execute(
            insert(notices).values(**values)
            .on_conflict_do_nothing(constraint="uq_notices_dedup_recipient")
            .returning(notices.c.id)
        )
    ).scalar()
    return None if notice_id is None else int(notice_id)


async def insert_deliveries(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> int:
    """Queue sends; those already queued for (dedup_key, recipient, channel) are skipped. Returns how many."""
    if not rows:
        return 0
    result = await session.execute(
        insert(deliveries).values(list(rows))
        .on_conflict_do_nothing(constraint="uq_deliveries_dedup_recipient_channel")
        .returning(deliveries.c.id)
    )
    return len(result.all())


async def recent(
    session: AsyncSession, recipient: str, since: datetime, exclude_templates: Collection[str] = ()
) -> Sequence[Row[Any]]:
    """(id, dedup_key, urgent) of the recipient's notices created since ``since`` (but those of
    ``exclude_templates``)."""
    q = select(notices.c.id, notices.c.dedup_key, notices.c.urgent).where(
        notices.c.recipient == recipient, notices.c.created_at >= since
    )
    if exclude_templates:
        q = q.where(notices.c.template_code.not_in(list(exclude_templates)))
    return (await session.execute(q)).all()


def _agg(column: Any) -> Any:
    return func.array_agg(aggregate_order_by(column, deliveries.c.channel))


# A notice's deliveries as parallel arrays ordered by channel (typed by the driver: no JSON round trip).
_SENDS = (
    select(
        _agg(deliveries.c.channel).label("channels"),
        _agg(deliveries.c.status).label("statuses"),
        _agg(deliveries.c.attempts).label("attempts"),
        _agg(deliveries.c.sent_at).label("sent_ats"),
    )
    .where(deliveries.c.notice_id == notices.c.id)
    .lateral("sends")
)
_PAGE_COLUMNS = (notices.c.id, notices.c.title, notices.c.body, notices.c.template_code, notices.c.template_version,
                 notices.c.uscc, notices.c.urgent, notices.c.created_at, notices.c.read_at)


async def page(
    session: AsyncSession, recipient: str, *, unread: bool | None, cursor: int | None, limit: int
) -> Sequence[Row[Any]]:
    """Up to ``limit`` notices of the inbox, newest first, below ``cursor``, each with its deliveries
    (``channels``, ``statuses``, ``attempts``, ``sent_ats``: arrays by channel, NULL when none) — one statement
    on the (recipient, id) index."""
    q = (
        select(*_PAGE_COLUMNS, _SENDS.c.channels, _SENDS.c.statuses, _SENDS.c.attempts, _SENDS.c.sent_ats)
        .select_from(notices.outerjoin(_SENDS, true()))
        .where(notices.c.recipient == recipient)
        .order_by(notices.c.id.desc())
        .limit(limit)
    )
    if unread:
        q = q.where(notices.c.read_at.is_(None))
    if cursor:
        q = q.where(notices.c.id < cursor)
    return (await session.execute(q)).all()


async def unread_count(session: AsyncSession, recipient: str) -> int:
    return int(
        (
            await session.execute(
                select(func.count()).where(notices.c.recipient == recipient, notices.c.read_at.is_(None))
            )
        ).scalar_one()
    )


async def mark_read(session: AsyncSession, recipient: str, notice_id: int) -> bool:
    """False when the recipient has no such notice."""
    found = (
        await session.execute(
            update(notices).where(notices.c.id == notice_id, notices.c.recipient == recipient)
            .values(read_at=func.coalesce(notices.c.read_at, func.now())).returning(notices.c.id)
        )
    ).first()
    return found is not None


# --- preferences --------------------------------------------------------------------------------------------


async def preferences_of(session: AsyncSession, recipient: str) -> RowMapping | None:
    return (await session.execute(select(preferences).where(preferences.c.recipient == recipient))).mappings().first()


async def save_preferences(session: AsyncSession, recipient: str, values: Mapping[str, Any]) -> None:
    await session.execute(
        insert(preferences).values(recipient=recipient, **values)
        .on_conflict_do_update(index_elements=["recipient"], set_={**values, "updated_at": func.now()})
    )


# --- the delivery worker's queue ----------------------------------------------------------------------------


async def claim_due(
    session: AsyncSession, now: datetime, stale: datetime, batch: int, claimed_by: int | None = None
) -> list[dict[str, Any]]:
    """Due rows, and 'sending' rows whose worker is gone (its lease, ``shared.leases``, is free: at once) or that
    were claimed before ``stale`` (the time lease, a backstop for a stuck worker), with their notice's title and
    body, locked with SKIP LOCKED and marked 'sending' (attempts + 1) under the lease key ``claimed_by``."""
    rows = (
        await session.execute(
            select(deliveries.c.id, deliveries.c.channel, deliveries.c.address, deliveries.c.attempts,
                   notices.c.title, notices.c.body)
            .join(notices, notices.c.id == deliveries.c.notice_id)
            .where(
                or_(
                    and_(deliveries.c.status.in_(["pending", "deferred"]), deliveries.c.next_attempt_at <= now),
                    and_(deliveries.c.status == "sending",
                         or_(deliveries.c.claimed_at <= stale, holder_gone(deliveries.c.claimed_by))),
                )
            )
            .order_by(deliveries.c.urgent.desc(), deliveries.c.next_attempt_at, deliveries.c.id)
            .limit(batch)
            .with_for_update(of=deliveries, skip_locked=True)
        )
    ).mappings().all()
    if rows:
        await session.execute(
            update(deliveries).where(deliveries.c.id.in_([r["id"] for r in rows]))
            .values(status="sending", claimed_at=now, claimed_by=claimed_by, attempts=deliveries.c.attempts + 1)
        )
    return [dict(r) for r in rows]


async def release_deliveries(session: AsyncSession, delivery_ids: Sequence[int]) -> None:
    """Hand claimed rows back untried (a stopping worker): pending again, the claim's attempt not counted."""
    if delivery_ids:
        await session.execute(
            update(deliveries).where(deliveries.c.id.in_(list(delivery_ids)), deliveries.c.status == "sending")
            .values(status="pending", claimed_at=None, claimed_by=None, attempts=deliveries.c.attempts - 1)
        )


async def finish_delivery(
    session: AsyncSession, delivery_id: int, values: Mapping[str, Any], claimed_by: int | None = None
) -> bool:
    """Record a send's outcome, only while the row is still this worker's ('sending' under its lease key; a row
    taken over by another worker is that worker's to record). False when it no longer was."""
    done = await session.execute(
        update(deliveries)
        .where(deliveries.c.id == delivery_id, deliveries.c.status == "sending",
               deliveries.c.claimed_by.is_not_distinct_from(claimed_by))
        .values(**values)
        .returning(deliveries.c.id)
    )
    return done.first() is not None
