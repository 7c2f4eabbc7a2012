"""Region tree (GB/T 2260 snapshot + programme zones)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.registry.api.deps import PrincipalDep, SessionDep
from services.registry.api.schemas import RegionOut, RegionTree
from services.registry.app import regions as cases

router = APIRouter(prefix="/api/v1/regions", tags=["regions 区划"])


@router.get("", response_model=RegionTree, summary="区划树(浙江省)")
async def tree(
    _: PrincipalDep,
    session: SessionDep,
    include_retired: Annotated[bool, Query(description="是否包含已撤销代码")] = False,
) -> RegionTree:
    async with session.begin():
        view = await cases.tree(session, include_retired)
    return RegionTree.model_validate(view)


@router.get("/{code}", response_model=RegionOut, summary="区划详情(含直接下级)")
async def one(code: str, _: PrincipalDep, session: SessionDep) -> RegionOut:
    async with session.begin():
        view = await cases.one(session, code)
    return RegionOut.model_validate(view)
