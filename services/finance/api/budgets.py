"""/api/v1/budgets: budgets per jurisdiction, fund channel and year; changes need a second official."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from services.finance.api.deps import IdemKey, Officer, Official, idempotent, manage
from services.finance.api.schemas import BudgetChangeOut, BudgetIn, BudgetOut, ReasonIn
from services.finance.app import budgets as uc
from shared.deps import SessionDep

router = APIRouter(prefix="/api/v1/budgets", tags=["budgets 预算"])


@router.get("", response_model=list[BudgetOut], summary="预算列表(本辖区)")
async def list_budgets(
    session: SessionDep,
    principal: Official,
    jurisdiction: str | None = None,
    fund: str | None = None,
    year: Annotated[int | None, Query(ge=2000, le=2100, description="年度")] = None,
) -> list[BudgetOut]:
    rows = await uc.listing(session, principal, jurisdiction=jurisdiction, fund=fund, year=year)
    return [BudgetOut.of(b) for b in rows]


@router.post(
    "",
    response_model=BudgetChangeOut,
    status_code=201,
    summary="申请下达预算(新建或追加;待本辖区另一名工作人员复核后生效)",
)
async def request_budget_change(
    body: BudgetIn, request: Request, session: SessionDep, principal: Official, idempotency_key: IdemKey
) -> Any:
    manage(principal, body.jurisdiction)

    async def work() -> tuple[int, Any]:
        change = await uc.request_change(session, principal, body.jurisdiction, body.fund, body.year, body.amount)
        return 201, BudgetChangeOut.of(change, await uc.budget_of(session, change)).model_dump(mode="json")

    return await idempotent(session, principal, request, idempotency_key, body.model_dump(mode="json"), work)


@router.get("/changes", response_model=list[BudgetChangeOut], summary="预算变更申请列表")
async def list_budget_changes(
    session: SessionDep,
    principal: Official,
    jurisdiction: str | None = None,
    status: Literal["pending", "approved", "rejected"] | None = None,
) -> list[BudgetChangeOut]:
    return [
        BudgetChangeOut.of(c) for c in await uc.changes(session, principal, jurisdiction=jurisdiction, status=status)
    ]


@router.post(
    "/changes/{change_id}/approve",
    response_model=BudgetChangeOut,
    summary="复核通过预算变更(本辖区另一名工作人员;通过后下达)",
)
async def approve_budget_change(
    change_id: uuid.UUID, request: Request, session: SessionDep, principal: Officer, idempotency_key: IdemKey
) -> Any:
    async def work() -> tuple[int, Any]:
        change = await uc.approve_change(session, principal, change_id)
        return 200, BudgetChangeOut.of(change, await uc.budget_of(session, change)).model_dump(mode="json")

    return await idempotent(session, principal, request, idempotency_key, {}, work)


@router.post("/changes/{change_id}/reject", response_model=BudgetChangeOut, summary="驳回预算变更")
async def reject_budget_change(
    change_id: uuid.UUID,
    body: ReasonIn,
    request: Request,
    session: SessionDep,
    principal: Officer,
    idempotency_key: IdemKey,
) -> Any:
    async def work() -> tuple[int, Any]:
        change = await uc.reject_change(session, principal, change_id, body.reason)
        return 200, BudgetChangeOut.of(change, await uc.budget_of(session, change)).model_dump(mode="json")

    return await idempotent(session, principal, request, idempotency_key, body.model_dump(mode="json"), work)
