"""/api/v1/entitlements and /api/v1/enterprises/{uscc}/entitlements: what is due, its approval and cancellation."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from services.finance.api.deps import Applicant, IdemKey, Officer, Reader, idempotent
from services.finance.api.schemas import ApplicationIn, DecisionIn, EntitlementOut, ReasonIn
from services.finance.app import entitlements as uc
from shared.db_reads import json_response
from shared.deps import SessionDep, read_pool

router = APIRouter(prefix="/api/v1/entitlements", tags=["entitlements 兑现"])
enterprises = APIRouter(prefix="/api/v1/enterprises", tags=["entitlements 兑现"])


@router.get("", response_model=list[EntitlementOut], summary="兑现列表(官员:本辖区出资;企业:本企业)")
async def list_entitlements(
    session: SessionDep,
    principal: Reader,
    status: str | None = None,
    uscc: str | None = None,
    jurisdiction: str | None = None,
    year: Annotated[int | None, Query(ge=2000, le=2100, description="年度")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[EntitlementOut]:
    filters = {"status": status, "uscc": uscc, "jurisdiction": jurisdiction, "year": year}
    return [EntitlementOut.of(e, d) for e, d in await uc.listing(session, principal, filters, limit)]


@router.get("/{entitlement_id}", response_model=EntitlementOut, summary="兑现详情(含计算过程)")
async def get_entitlement(entitlement_id: uuid.UUID, session: SessionDep, principal: Reader) -> EntitlementOut:
    return EntitlementOut.of(*await uc.get_visible(session, principal, entitlement_id))


@router.post(
    "/applications", response_model=EntitlementOut, status_code=201, summary="项目类补助申报(投资、采购、奖项、培训)"
)
async def apply(
    body: ApplicationIn, request: Request, session: SessionDep, principal: Applicant, idempotency_key: IdemKey
) -> Any:
    async def work() -> tuple[int, Any]:
        row = await uc.apply(
            session,
            principal,
            uscc=body.uscc,
            region_code=body.region_code,
            policy_id=body.policy_id,
            project_ref=body.project_ref,
            year=body.year,
            figures=body.figures.model_dump(mode="json", exclude_none=True),
        )
        return 201, EntitlementOut.of(row).model_dump(mode="json")

    return await idempotent(session, principal, request, idempotency_key, body.model_dump(mode="json"), work)


@router.post(
    "/{entitlement_id}/approve", response_model=EntitlementOut, summary="审批(预留预算、生成拨付指令;审批人≠创建人)"
)
async def approve(
    entitlement_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: Officer,
    idempotency_key: IdemKey,
    body: DecisionIn | None = None,
) -> Any:
    raw = body.model_dump(mode="json") if body else {}

    async def work() -> tuple[int, Any]:
        row, disb = await uc.approve_by_id(session, principal, entitlement_id, body.comment if body else None)
        return 200, EntitlementOut.of(row, disb).model_dump(mode="json")

    return await idempotent(session, principal, request, idempotency_key, raw, work)


@router.post("/{entitlement_id}/reject", response_model=EntitlementOut, summary="驳回")
async def reject(
    entitlement_id: uuid.UUID,
    body: ReasonIn,
    request: Request,
    session: SessionDep,
    principal: Officer,
    idempotency_key: IdemKey,
) -> Any:
    async def work() -> tuple[int, Any]:
        row = await uc.reject_by_id(session, principal, entitlement_id, body.reason)
        return 200, EntitlementOut.of(row).model_dump(mode="json")

    return await idempotent(session, principal, request, idempotency_key, body.model_dump(mode="json"), work)


@router.post("/{entitlement_id}/cancel", response_model=EntitlementOut, summary="取消(已审批未拨付的释放预算)")
async def cancel(
    entitlement_id: uuid.UUID,
    body: ReasonIn,
    request: Request,
    session: SessionDep,
    principal: Officer,
    idempotency_key: IdemKey,
) -> Any:
    async def work() -> tuple[int, Any]:
        row, disb = await uc.cancel_by_id(session, principal, entitlement_id, body.reason)
        return 200, EntitlementOut.of(row, disb).model_dump(mode="json")

    return await idempotent(session, principal, request, idempotency_key, body.model_dump(mode="json"), work)


@enterprises.get(
    "/{uscc}/entitlements", response_model=list[EntitlementOut],
    summary="某企业的兑现与拨付(企业仅本企业;官员:本辖区出资,企业不在辖区内 404)",
)
async def enterprise_entitlements(uscc: str, principal: Reader, request: Request) -> Response:
    # a hot read of the 企业码 app: list[EntitlementOut]'s JSON written by PostgreSQL, passed through
    return json_response(await uc.of_enterprise_json(read_pool(request), principal, uscc))
