"""/api/v1/ledger and /api/v1/reconciliations: the double-entry ledger and the daily gateway reconciliation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.finance.api.deps import Official, manage
from services.finance.api.schemas import LedgerOut, ReconciliationIn, ReconciliationOut, ReconciliationRunOut
from services.finance.app import ledger as uc
from services.finance.app import reconciliation
from services.finance.app.payments import CONFIG, GatewayClient
from shared.deps import RuntimeDep, SessionDep

router = APIRouter(prefix="/api/v1/ledger", tags=["ledger 账本"])
reconciliations = APIRouter(prefix="/api/v1/reconciliations", tags=["reconciliations 对账"])


@router.get("", response_model=LedgerOut, summary="账本明细与各资金渠道合计(借贷平衡)")
async def get_ledger(
    session: SessionDep,
    principal: Official,
    jurisdiction: str | None = None,
    fund: str | None = None,
    year: Annotated[int | None, Query(ge=2000, le=2100, description="年度")] = None,
    limit: Annotated[int, Query(ge=0, le=5000)] = 500,
) -> LedgerOut:
    juris = jurisdiction or principal.region
    manage(principal, juris)
    return LedgerOut.model_validate(await uc.view(session, juris, fund, year, limit))


@reconciliations.post("", response_model=ReconciliationRunOut, status_code=201, summary="按日对账:账本 vs 网关对账单")
async def reconcile(
    body: ReconciliationIn, session: SessionDep, principal: Official, runtime: RuntimeDep
) -> ReconciliationRunOut:
    gateway = GatewayClient(runtime.settings.payment_gateway_url, CONFIG.timeout)
    row = await reconciliation.run(session, principal, gateway, body.date)
    out = ReconciliationOut.of(row)
    return ReconciliationRunOut(**out.model_dump(), ok=not out.mismatches)


@reconciliations.get("", response_model=list[ReconciliationOut], summary="对账记录")
async def list_reconciliations(session: SessionDep, principal: Official) -> list[ReconciliationOut]:
    return [ReconciliationOut.of(r) for r in await reconciliation.listing(session, principal)]
