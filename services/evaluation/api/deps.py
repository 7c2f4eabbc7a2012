"""The evaluation API's dependency aliases: session, caller, runtime and the role guards of its routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from shared.auth import Principal, Role
from shared.deps import PrincipalDep, RuntimeDep, SessionDep, require_roles

__all__ = ["OfficialDep", "PrincipalDep", "ProvinceDep", "RuntimeDep", "SessionDep"]

# any official (county, city, province; admin passes every guard)
OfficialDep = Annotated[Principal, Depends(require_roles(Role.PROVINCE, Role.CITY, Role.COUNTY))]
ProvinceDep = Annotated[Principal, Depends(require_roles(Role.PROVINCE))]
