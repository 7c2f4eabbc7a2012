"""The evaluation API's dependency aliases: session, caller, runtime and the role guards of its routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from shared.auth import Principal, Role
from shared.deps import PrincipalDep, RuntimeDep, SessionDep, require_roles
from shared.problems import Problem

__all__ = ["DevAdminDep", "OfficialDep", "PrincipalDep", "ProvinceDep", "RuntimeDep", "SessionDep"]

# any official (county, city, province; admin passes every guard)
OfficialDep = Annotated[Principal, Depends(require_roles(Role.PROVINCE, Role.CITY, Role.COUNTY))]
ProvinceDep = Annotated[Principal, Depends(require_roles(Role.PROVINCE))]


def _dev_admin(principal: PrincipalDep, runtime: RuntimeDep) -> Principal:
    """The dev clock's guard: an admin, and never in production."""
    if runtime.settings.env == "prod":
        raise Problem(403, "生产环境不允许调整决定日 (dev clock refused when ZJTX_ENV=prod)")
    if principal.role != Role.ADMIN:
        raise Problem(403, f"只有管理员可以调整开发时钟 (role {principal.role.value} not allowed; needs admin)")
    return principal


DevAdminDep = Annotated[Principal, Depends(_dev_admin)]
