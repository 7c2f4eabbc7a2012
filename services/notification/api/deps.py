"""The notification service's dependency aliases for its routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from shared.auth import Principal, Role
from shared.deps import PrincipalDep, SessionDep, require_roles

# Officials of any level, or admin (require_roles lets admin pass); jurisdiction is checked by the use case.
OfficialOrAdminDep = Annotated[Principal, Depends(require_roles(Role.PROVINCE, Role.CITY, Role.COUNTY))]

__all__ = ["OfficialOrAdminDep", "PrincipalDep", "SessionDep"]
