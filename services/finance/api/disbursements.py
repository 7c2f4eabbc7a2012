"""/api/v1/disbursements: payment instructions (sent by the worker) and the resend of a failed one."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request

from services.finance.api.deps import IdemKey, Officer, Reader, idempotent
from services.finance.api.schemas import DisbursementOut
from services.finance.app import payments as uc
from shared.deps import SessionDep

router = APIRouter(prefix="/api/v1/disbursements", tags=["disbursements 拨付"])


@router.get("", response_model=list[DisbursementOut], summary="拨付指令列表")
async def list_disbursements(session: SessionDep, principal: Reader, state: str | None = None) -> list[DisbursementOut]:
    return [DisbursementOut.of(d) for d in await uc.listing(session, principal, state)]


@router.post(
    "/{disbursement_id}/retry",
    response_model=DisbursementOut,
    summary="失败指令重新发送(同一幂等键;审批人不能重新发送)",
)
async def retry_disbursement(
    disbursement_id: uuid.UUID, request: Request, session: SessionDep, principal: Officer, idempotency_key: IdemKey
) -> Any:
    async def work() -> tuple[int, Any]:
        d = await uc.retry(session, principal, disbursement_id)
        return 200, DisbursementOut.of(d).model_dump(mode="json")

    return await idempotent(session, principal, request, idempotency_key, {}, work)
