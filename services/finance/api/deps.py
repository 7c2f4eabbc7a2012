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
from shared.deps import PrincipalDep, require_roles
from shared.idempotency import remember, replay, request_hash, require_key
from shared.problems import Problem

# Configuration (policies, budget change requests): officials of the jurisdiction or the admin.
Official = Annotated[Principal, Depends(require_roles(Role.PROVINCE, Role.CITY, Role.COUNTY))]
Reader = Annotated[Principal, Depends(require_roles(Role.PROVINCE, Role.CITY, Role.COUNTY, Role.ENTERPRISE))]


def _payment_step(*roles: Role) -> Callable[..., Principal]:
    """Separation of duties: a step of a payment (apply, approve, reject, cancel, resend, repaid) is taken by
    the listed roles only; the admin configures and never takes one."""
    allowed = frozenset(roles)

    def guard(principal: PrincipalDep) -> Principal:
        if principal.role not in allowed:
            if principal.role == Role.ADMIN:
                raise Problem(403, "管理员负责配置(政策、预算),不参与兑现和拨付环节 (separation of duties)")
            names = "、".join(sorted(r.value for r in allowed))
            raise Problem(403, f"当前角色无权执行此操作 (role {principal.role.value} not allowed; needs {names})")
        return principal

    return guard


# Officials only (no admin): approval, rejection, cancellation, resend, repayment, budget checks.
Officer = Annotated[Principal, Depends(_payment_step(Role.PROVINCE, Role.CITY, Role.COUNTY))]
# Project applications: the enterprise itself or an official of its region (no admin).
Applicant = Annotated[Principal, Depends(_payment_step(Role.PROVINCE, Role.CITY, Role.COUNTY, Role.ENTERPRISE))]


def _money_key(
    key: Annotated[
        str | None, Header(alias="Idempotency-Key", description="幂等键(必填):重试使用同一键,返回首次结果")
    ] = None,
) -> str:
    return require_key(key)


# Required on every POST that moves money (428 when missing).
IdemKey = Annotated[str, Depends(_money_key)]


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
