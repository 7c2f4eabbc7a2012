"""Use cases of the caller's inbox (企业码 app) and delivery preferences."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.notification.app.notices import commissioner_key, enterprise_key, official_key
from services.notification.db import inbox_reads
from services.notification.db import notices as notice_repo
from services.notification.db.models import backbone
from shared.audit import record_audit
from shared.auth import Principal, Role
from shared.db_reads import ReadPool
from shared.problems import Problem, not_found

PREFERENCE_FIELDS = ("sms", "email", "quiet_start", "quiet_end", "gap_advice_sms")


def inbox_of(principal: Principal) -> str:
    """The caller's own inbox: enterprise → its USCC, commissioner → its id, official → role + region."""
    if principal.role == Role.ENTERPRISE and principal.uscc:
        return enterprise_key(principal.uscc)
    if principal.role == Role.COMMISSIONER:
        return commissioner_key(principal.sub)
    if principal.is_official:
        return official_key(principal.role.value, principal.region)
    raise Problem(403, "该角色没有通知收件箱 (no inbox for this role)")


async def page(
    session: AsyncSession, principal: Principal, *, unread: bool | None, cursor: int | None, limit: int
) -> dict[str, Any]:
    """A page of the caller's notices, newest first, each with its SMS/e-mail delivery states. Through the session:
    the reference the route's :func:`page_json` is held equal to (tests/notification/test_hot_reads.py)."""
    rows = await notice_repo.page(session, inbox_of(principal), unread=unread, cursor=cursor, limit=limit + 1)
    shown = rows[:limit]
    items = [
        {
            "id": r.id, "title": r.title, "body": r.body, "template_code": r.template_code,
            "template_version": r.template_version, "uscc": r.uscc, "urgent": r.urgent, "created_at": r.created_at,
            "read_at": r.read_at,
            "deliveries": [
                {"channel": c, "status": s, "attempts": a, "sent_at": t}
                for c, s, a, t in zip(r.channels or (), r.statuses or (), r.attempts or (), r.sent_ats or (),
                                      strict=True)
            ],
        }
        for r in shown
    ]
    return {"items": items, "next_cursor": shown[-1].id if len(rows) > limit else None}


async def page_json(
    pool: ReadPool, principal: Principal, *, unread: bool | None, cursor: int | None, limit: int
) -> str:
    """NoticePage's JSON (as :func:`page`), written by PostgreSQL without a session."""
    return await inbox_reads.page_json(pool, inbox_of(principal), unread=unread, cursor=cursor, limit=limit)


async def unread(session: AsyncSession, principal: Principal) -> int:
    return await notice_repo.unread_count(session, inbox_of(principal))


async def mark_read(session: AsyncSession, principal: Principal, notice_id: int) -> int:
    """Mark one of the caller's notices read (404 if not theirs); the unread count after."""
    key = inbox_of(principal)
    if not await notice_repo.mark_read(session, key, notice_id):
        raise not_found("通知")
    return await notice_repo.unread_count(session, key)


async def preferences(session: AsyncSession, principal: Principal) -> dict[str, Any] | None:
    row = await notice_repo.preferences_of(session, inbox_of(principal))
    return None if row is None else {k: row[k] for k in PREFERENCE_FIELDS}


async def save_preferences(session: AsyncSession, principal: Principal, values: Mapping[str, Any]) -> None:
    key = inbox_of(principal)
    await notice_repo.save_preferences(session, key, values)
    await record_audit(session, backbone, principal, "preferences.update", "inbox", key, after=dict(values))
