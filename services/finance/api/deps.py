"""The finance API's dependency aliases: role guards, the Idempotency-Key header, idempotent money POSTs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from services.finance.db.models import backbone
from shared.auth import Principal, Role
from shared.deps import require_roles
from shared.idempotency import remember, replay, request_hash
from shared.problems import Problem

Official = Annotated[Principal, Depends(require_roles(Role.PROVINCE, Role.CITY, Role.COUNTY))]
Reader = Annotated[Principal, Depends(require_roles(Role.PROVINCE, Role.CITY, Role.COUNTY, Role.ENTERPRISE))]
Applicant = Reader

IdemKey = Annotated[str | None, Header(alias="Idempotency-Key", description="幂等键:重试返回首次结果")]


def manage(principal: Principal, jurisdiction: str) -> None:
    """404 when the jurisdiction is outside the caller's."""
    if not principal.covers_region(jurisdiction):
        raise Problem(404, f"辖区 {jurisdiction} 不在您的管辖范围内 (not found)")


async def idempotent(
    session: AsyncSession,
    principal: Principal,
    request: Request,
    key: str | None,
    body: Any,
    work: Callable[[], Awaitable[tuple[int, Any]]],
) -> JSONResponse:
    """Run ``work`` in one transaction; with an ``Idempotency-Key`` a retry returns the first response."""
    async with session.begin():
        h = request_hash(jsonable_encoder(body))
        if key is not None:
            stored = await replay(session, backbone, principal.sub, key, request.method, request.url.path, h)
            if stored is not None:
                return JSONResponse(stored[1], status_code=stored[0], headers={"Idempotent-Replayed": "true"})
        status, payload = await work()
        content = jsonable_encoder(payload)
        if key is not None:
            await remember(session, backbone, principal.sub, key, request.method, request.url.path, h, status, content)
    return JSONResponse(content, status_code=status)
