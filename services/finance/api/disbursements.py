"""/api/v1/disbursements: payment instructions (sent by the worker) and the retry of a failed one."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from services.finance.api.deps import Official, Reader
from services.finance.api.schemas import DisbursementOut
from services.finance.app import payments as uc
from shared.deps import SessionDep

router = APIRouter(prefix="/api/v1/disbursements", tags=["disbursements 拨付"])


@router.get("", response_model=list[DisbursementOut], summary="拨付指令列表")
async def list_disbursements(session: SessionDep, principal: Reader, state: str | None = None) -> list[DisbursementOut]:
    return [DisbursementOut.of(d) for d in await uc.listing(session, principal, state)]


@router.post("/{disbursement_id}/retry", response_model=DisbursementOut, summary="失败指令重新发送(同一幂等键)")
async def retry_disbursement(disbursement_id: uuid.UUID, session: SessionDep, principal: Official) -> DisbursementOut:
    async with session.begin():
        d = await uc.retry(session, principal, disbursement_id)
    return DisbursementOut.of(d)
