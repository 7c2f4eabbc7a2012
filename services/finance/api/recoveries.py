"""/api/v1/recoveries: 追回 of paid rewards whose title was revoked."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request

from services.finance.api.deps import IdemKey, Officer, Reader, idempotent
from services.finance.api.schemas import RecoveryOut
from services.finance.app import entitlements as uc
from shared.deps import SessionDep

router = APIRouter(prefix="/api/v1/recoveries", tags=["recoveries 追回"])


@router.get("", response_model=list[RecoveryOut], summary="追回列表")
async def list_recoveries(session: SessionDep, principal: Reader, status: str | None = None) -> list[RecoveryOut]:
    return [RecoveryOut.of(r) for r in await uc.recoveries_visible(session, principal, status)]


@router.post("/{recovery_id}/repaid", response_model=RecoveryOut, summary="登记追回到账")
async def recovery_repaid(
    recovery_id: uuid.UUID, request: Request, session: SessionDep, principal: Officer, idempotency_key: IdemKey
) -> Any:
    async def work() -> tuple[int, Any]:
        rec = await uc.repaid_by_id(session, principal, recovery_id)
        return 200, RecoveryOut.of(rec).model_dump(mode="json")

    return await idempotent(session, principal, request, idempotency_key, {}, work)
