"""/api/v1/budgets: budgets per jurisdiction, fund channel and year."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from services.finance.api.deps import IdemKey, Official, idempotent, manage
from services.finance.api.schemas import BudgetIn, BudgetOut
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


@router.post("", response_model=BudgetOut, status_code=201, summary="下达预算(新建或追加)")
async def allocate_budget(
    body: BudgetIn, request: Request, session: SessionDep, principal: Official, idempotency_key: IdemKey = None
) -> Any:
    manage(principal, body.jurisdiction)

    async def work() -> tuple[int, Any]:
        row = await uc.allocate(session, principal, body.jurisdiction, body.fund, body.year, body.amount)
        return 201, BudgetOut.of(row).model_dump(mode="json")

    return await idempotent(session, principal, request, idempotency_key, body.model_dump(mode="json"), work)
