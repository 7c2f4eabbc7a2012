"""In-app inbox (企业码 app) and delivery preferences of the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from services.notification.api.deps import PrincipalDep, SessionDep
from services.notification.api.schemas import NoticePage, PreferencesIO, UnreadCount
from services.notification.app import inbox
from shared.db_reads import json_response
from shared.deps import read_pool
from shared.problems import field_error

router = APIRouter(prefix="/api/v1/notifications", tags=["通知 notifications"])


@router.get("", response_model=NoticePage, summary="我的通知")
async def list_notices(
    principal: PrincipalDep,
    request: Request,
    unread: Annotated[bool | None, Query(description="只看未读")] = None,
    cursor: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="游标(上一页 next_cursor)")] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="每页条数")] = 50,
) -> Response:
    # a hot read of the 企业码 app: NoticePage's JSON written by PostgreSQL, passed through (403 before any
    # database work for a role without an inbox)
    return json_response(await inbox.page_json(read_pool(request), principal, unread=unread, cursor=cursor,
                                               limit=limit))


@router.get("/unread-count", response_model=UnreadCount, summary="未读数")
async def unread_count(session: SessionDep, principal: PrincipalDep) -> UnreadCount:
    inbox.inbox_of(principal)
    async with session.begin():
        return UnreadCount(unread=await inbox.unread(session, principal))


@router.post("/{notice_id}/read", response_model=UnreadCount, summary="标记已读")
async def mark_read(
    notice_id: Annotated[int, Path(ge=1, le=2**63 - 1, description="通知编号")],
    session: SessionDep,
    principal: PrincipalDep,
) -> UnreadCount:
    inbox.inbox_of(principal)
    async with session.begin():
        return UnreadCount(unread=await inbox.mark_read(session, principal, notice_id))


@router.get("/preferences", response_model=PreferencesIO, summary="我的通知偏好")
async def get_preferences(session: SessionDep, principal: PrincipalDep) -> PreferencesIO:
    inbox.inbox_of(principal)
    async with session.begin():
        found = await inbox.preferences(session, principal)
    return PreferencesIO() if found is None else PreferencesIO(**found)


@router.put("/preferences", response_model=PreferencesIO, summary="设置通知偏好(渠道开关、免打扰时段)")
async def put_preferences(body: PreferencesIO, session: SessionDep, principal: PrincipalDep) -> PreferencesIO:
    inbox.inbox_of(principal)
    if (body.quiet_start is None) != (body.quiet_end is None):
        raise field_error("quiet_end", "免打扰开始和结束时间须同时设置或同时为空")
    async with session.begin():
        await inbox.save_preferences(session, principal, body.model_dump())
    return body
