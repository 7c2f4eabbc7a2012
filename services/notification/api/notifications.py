"""In-app inbox (企业码 app) and delivery preferences of the caller."""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert

from services.notification.db.models import backbone, deliveries, notices, preferences
from services.notification.notify import commissioner_key, enterprise_key, official_key
from shared.audit import record_audit
from shared.auth import Principal, Role
from shared.deps import PrincipalDep, SessionDep
from shared.problems import Problem, field_error, not_found

router = APIRouter(prefix="/api/v1/notifications", tags=["通知 notifications"])


def inbox_of(principal: Principal) -> str:
    """The caller's own inbox: enterprise → its USCC, commissioner → its id, official → role + region."""
    if principal.role == Role.ENTERPRISE and principal.uscc:
        return enterprise_key(principal.uscc)
    if principal.role == Role.COMMISSIONER:
        return commissioner_key(principal.sub)
    if principal.is_official:
        return official_key(principal.role.value, principal.region)
    raise Problem(403, "该角色没有通知收件箱 (no inbox for this role)")


class DeliveryOut(BaseModel):
    channel: str = Field(description="渠道 sms 短信 / email 邮件")
    status: str = Field(
        description="状态 pending 待发 / sending 发送中 / sent 已发送 / failed 失败 / deferred 免打扰延后"
    )
    attempts: int = Field(description="尝试次数")
    sent_at: datetime | None = Field(description="发送时间")


class NoticeOut(BaseModel):
    id: int = Field(description="通知编号")
    title: str = Field(description="标题")
    body: str = Field(description="正文")
    template_code: str = Field(description="模板编码")
    template_version: int = Field(description="模板版本")
    uscc: str | None = Field(description="相关企业")
    urgent: bool = Field(description="是否紧急")
    created_at: datetime = Field(description="创建时间")
    read_at: datetime | None = Field(description="已读时间")
    deliveries: list[DeliveryOut] = Field(description="短信/邮件投递状态")


class NoticePage(BaseModel):
    items: list[NoticeOut] = Field(description="通知(新→旧)")
    next_cursor: int | None = Field(description="下一页游标")


class UnreadCount(BaseModel):
    unread: int = Field(description="未读数")


class PreferencesIO(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sms: bool = Field(True, description="接收短信")
    email: bool = Field(True, description="接收邮件")
    quiet_start: time | None = Field(None, description="免打扰开始(北京时间,如 22:00)")
    quiet_end: time | None = Field(None, description="免打扰结束(北京时间,如 07:30)")


@router.get("", response_model=NoticePage, summary="我的通知")
async def list_notices(
    session: SessionDep,
    principal: PrincipalDep,
    unread: Annotated[bool | None, Query(description="只看未读")] = None,
    cursor: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="游标(上一页 next_cursor)")] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="每页条数")] = 50,
) -> NoticePage:
    key = inbox_of(principal)
    async with session.begin():
        q = select(notices).where(notices.c.recipient == key).order_by(notices.c.id.desc()).limit(limit + 1)
        if unread:
            q = q.where(notices.c.read_at.is_(None))
        if cursor:
            q = q.where(notices.c.id < cursor)
        rows = (await session.execute(q)).mappings().all()
        page = rows[:limit]
        by_notice: dict[int, list[DeliveryOut]] = {}
        if page:
            drows = (
                await session.execute(
                    select(deliveries).where(deliveries.c.notice_id.in_([r["id"] for r in page]))
                    .order_by(deliveries.c.channel)
                )
            ).mappings().all()
            for d in drows:
                by_notice.setdefault(d["notice_id"], []).append(
                    DeliveryOut(channel=d["channel"], status=d["status"], attempts=d["attempts"], sent_at=d["sent_at"])
                )
        items = [
            NoticeOut(**{k: r[k] for k in ("id", "title", "body", "template_code", "template_version", "uscc",
                                           "urgent", "created_at", "read_at")}, deliveries=by_notice.get(r["id"], []))
            for r in page
        ]
        return NoticePage(items=items, next_cursor=page[-1]["id"] if len(rows) > limit else None)


@router.get("/unread-count", response_model=UnreadCount, summary="未读数")
async def unread_count(session: SessionDep, principal: PrincipalDep) -> UnreadCount:
    key = inbox_of(principal)
    async with session.begin():
        n = (
            await session.execute(
                select(func.count()).where(notices.c.recipient == key, notices.c.read_at.is_(None))
            )
        ).scalar_one()
        return UnreadCount(unread=n)


@router.post("/{notice_id}/read", response_model=UnreadCount, summary="标记已读")
async def mark_read(
    notice_id: Annotated[int, Path(ge=1, le=2**63 - 1, description="通知编号")],
    session: SessionDep,
    principal: PrincipalDep,
) -> UnreadCount:
    key = inbox_of(principal)
    async with session.begin():
        found = (
            await session.execute(
                update(notices).where(notices.c.id == notice_id, notices.c.recipient == key)
                .values(read_at=func.coalesce(notices.c.read_at, func.now())).returning(notices.c.id)
            )
        ).first()
        if found is None:
            raise not_found("通知")
        n = (
            await session.execute(
                select(func.count()).where(notices.c.recipient == key, notices.c.read_at.is_(None))
            )
        ).scalar_one()
        return UnreadCount(unread=n)


@router.get("/preferences", response_model=PreferencesIO, summary="我的通知偏好")
async def get_preferences(session: SessionDep, principal: PrincipalDep) -> PreferencesIO:
    key = inbox_of(principal)
    async with session.begin():
        row = (await session.execute(select(preferences).where(preferences.c.recipient == key))).mappings().first()
        if row is None:
            return PreferencesIO()
        return PreferencesIO(**{k: row[k] for k in PreferencesIO.model_fields})


@router.put("/preferences", response_model=PreferencesIO, summary="设置通知偏好(渠道开关、免打扰时段)")
async def put_preferences(body: PreferencesIO, session: SessionDep, principal: PrincipalDep) -> PreferencesIO:
    key = inbox_of(principal)
    if (body.quiet_start is None) != (body.quiet_end is None):
        raise field_error("quiet_end", "免打扰开始和结束时间须同时设置或同时为空")
    values: dict[str, Any] = body.model_dump()
    async with session.begin():
        await session.execute(
            insert(preferences).values(recipient=key, **values)
            .on_conflict_do_update(index_elements=["recipient"], set_={**values, "updated_at": func.now()})
        )
        await record_audit(session, backbone, principal, "preferences.update", "inbox", key, after=values)
    return body
