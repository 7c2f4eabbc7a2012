"""The monitor's dependency aliases: who may read, and the region they ask for (inside their jurisdiction)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from shared.auth import AuthError, Principal, Role, decode_token
from shared.deps import RuntimeDep, SessionDep, require_roles
from shared.problems import field_error, not_found

__all__ = ["PagePrincipalDep", "ReaderDep", "RuntimeDep", "SessionDep", "YearQuery", "in_jurisdiction"]

COOKIE = "zjtx_token"
READERS = (Role.AGENCY, Role.PROVINCE, Role.CITY, Role.COUNTY)

ReaderDep = Annotated[Principal, Depends(require_roles(*READERS))]
YearQuery = Annotated[int, Query(ge=2000, le=2100, description="年度")]


def in_jurisdiction(principal: Principal, region: str | None) -> str:
    """The region asked for (default: the caller's own); outside the caller's jurisdiction it does not exist."""
    code = region or principal.region
    if len(code) != 6 or not code.isdigit():
        raise field_error("region", "区划代码应为 6 位数字 (GB/T 2260)")
    if not principal.covers_region(code):
        raise not_found("区划")
    return code


def page_principal(request: Request, runtime: RuntimeDep) -> Principal:
    """The signed-in user of a page: the token cookie set by the sign-in form (or a bearer header)."""
    token = request.cookies.get(COOKIE)
    header = request.headers.get("authorization", "")
    if not token and header.lower().startswith("bearer "):
        token = header[7:]
    if not token:
        raise AuthError("请先登录 (sign in with a token)")
    principal = decode_token(runtime.settings, token)
    if principal.role not in (*READERS, Role.ADMIN):
        raise AuthError("当前角色无权查看监测页面 (role not allowed)")
    return principal


PagePrincipalDep = Annotated[Principal, Depends(page_principal)]
