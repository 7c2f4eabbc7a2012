"""Routes every service serves about its event backbone (``create_app`` includes them): the JSON Schemas of the
events it publishes (and of the agency feeds), where their ``ce_dataschema`` points, and the parked outbox rows
for admins."""

from __future__ import annotations

import uuid
from datetime import datetime
from functools import lru_cache
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from shared.auth import Principal
from shared.deps import RuntimeDep, require_roles
from shared.events.contracts import AGENCY, SCHEMA_MEDIA_TYPE, contracts, json_schema
from shared.events.encoder import dataschema_of
from shared.events.envelope import dumps
from shared.events.outbox import parked_rows
from shared.problems import Problem
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


class ContractRef(BaseModel):
    type: str = Field(description="事件类型 (含版本)")
    producer: str = Field(description="产生方 (服务名或 agency)")
    topic: str = Field(description="Kafka 主题")
    schema_url: str = Field(description="载荷 JSON Schema 的地址 (= 事件的 ce_dataschema)")
    consumers: list[str] = Field(description="消费该事件的服务")


class ContractList(BaseModel):
    items: list[ContractRef]


contracts_router = APIRouter(prefix="/api/v1/contracts", tags=["contracts"])


def _served(request: Request) -> list[str]:
    """The types this service answers for: those it publishes, and the agency feeds' (declared in shared)."""
    service = request.app.state.runtime.spec.name
    return [t for t, c in contracts().items() if c.producer in (service, AGENCY)]


@contracts_router.get("", response_model=ContractList, summary="本服务发布的事件契约 (event contracts served here)")
async def list_contracts(request: Request) -> ContractList:
    known = contracts()
    return ContractList(items=[
        ContractRef(type=t, producer=known[t].producer, topic=known[t].topic,
                    schema_url=dataschema_of(known[t].producer, t), consumers=list(known[t].consumers))
        for t in _served(request)
    ])


@contracts_router.get(
    "/{event_type}",
    response_class=Response,
    responses={200: {"content": {SCHEMA_MEDIA_TYPE: {"schema": {"type": "object"}}},
                     "description": "载荷的 JSON Schema (2020-12)"}},
    summary="事件载荷的 JSON Schema (the ce_dataschema of the event type)",
)
async def get_contract(request: Request, event_type: str) -> Response:
    if event_type not in _served(request):
        raise Problem(404, f"本服务没有此事件类型的契约 (no contract for {event_type} here)")
    return Response(content=_schema_bytes(event_type), media_type=SCHEMA_MEDIA_TYPE)


@lru_cache
def _schema_bytes(event_type: str) -> bytes:
    return dumps(json_schema(event_type))


routers: list[APIRouter] = [contracts_router, admin]
