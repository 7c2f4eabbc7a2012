"""Routes every service serves about its event backbone (``create_app`` includes them): the parked outbox rows
for admins."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from shared.auth import Principal
from shared.deps import RuntimeDep, require_roles
from shared.events.outbox import parked_rows
from shared.runtime import OUTBOX_MAX_ATTEMPTS


class ParkedRow(BaseModel):
    seq: int = Field(description="出站表序号 (outbox sequence)")
    event_id: uuid.UUID = Field(description="事件 ID")
    type: str = Field(description="事件类型")
    topic: str = Field(description="主题")
    key: str = Field(description="消息键 (统一社会信用代码)")
    created_at: datetime = Field(description="写入时间")
    attempts: int = Field(description="已尝试发布次数")
    last_error: str | None = Field(description="最后一次发布失败的原因")


class ParkedRows(BaseModel):
    max_attempts: int = Field(description="达到此尝试次数即搁置 (parked after this many attempts)")
    items: list[ParkedRow]


admin = APIRouter(prefix="/api/v1/admin/outbox", tags=["admin"])


@admin.get("/parked", response_model=ParkedRows, summary="搁置的出站事件 (outbox rows parked after failed publishes)")
async def list_parked(
    runtime: RuntimeDep,
    _: Annotated[Principal, Depends(require_roles())],
    limit: Annotated[int, Query(ge=1, le=1000, description="最多返回条数")] = 100,
) -> ParkedRows:
    rows = await parked_rows(runtime.session_factory, runtime.spec.backbone, OUTBOX_MAX_ATTEMPTS, limit)
    return ParkedRows(max_attempts=OUTBOX_MAX_ATTEMPTS, items=[ParkedRow.model_validate(r) for r in rows])


routers: list[APIRouter] = [admin]
