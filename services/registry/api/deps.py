"""The registry's dependency aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query

from services.registry.db.enterprises import ListFilter
from shared.auth import Principal, Role
from shared.deps import PrincipalDep, SessionDep, require_roles
from shared.problems import field_error
from shared.tiers import TIERS

__all__ = ["FilterDep", "PrincipalDep", "RegionPath", "SessionDep", "WriterDep"]

WriterDep = Annotated[Principal, Depends(require_roles(Role.PROVINCE, Role.CITY, Role.COUNTY))]

RegionPath = Annotated[str, Path(pattern=r"^\d{6}$", description="培育库所属区划")]


def _filters(
    region: Annotated[str | None, Query(description="区划代码(含下级)")] = None,
    industry: Annotated[str | None, Query(description="行业代码前缀 GB/T 4754")] = None,
    tier: Annotated[str | None, Query(description="当前有效称号 id (innovative, srdi, little_giant …)")] = None,
    pool: Annotated[str | None, Query(description="培育库编号或“层级:方向”,如 county:srdi")] = None,
    q: Annotated[str | None, Query(max_length=100, description="企业名称关键字(支持部分中文名称)")] = None,
    status: Annotated[str | None, Query(description="active / deregistered")] = None,
) -> ListFilter:
    if tier is not None and tier not in TIERS:
        raise field_error("tier", f"称号 id 无效,可选: {', '.join(TIERS)}")
    return ListFilter(region=region, industry=industry, tier=tier, pool=pool, q=q, status=status)


FilterDep = Annotated[ListFilter, Depends(_filters)]
