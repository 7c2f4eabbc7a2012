"""Region tree (GB/T 2260 snapshot + programme zones)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import select

from services.registry.db.models import Region
from services.registry.domain.regions import SNAPSHOT
from shared.deps import PrincipalDep, SessionDep
from shared.problems import not_found

router = APIRouter(prefix="/api/v1/regions", tags=["regions 区划"])


class RegionOut(BaseModel):
    code: str = Field(description="区划代码(功能区为项目代码)")
    name: str = Field(description="名称")
    parent_code: str | None = Field(description="上级代码")
    level: str = Field(description="province / city / county")
    is_zone: bool = Field(description="是否为非行政区划的功能区(项目代码)")
    status: str = Field(description="active 现行 / retired 已撤销")
    retired_on: date | None = Field(None, description="撤销日期")
    successor_code: str | None = Field(None, description="继承区划代码")
    note: str | None = None
    children: list[RegionOut] = Field(default_factory=list)


class RegionTree(BaseModel):
    snapshot: str = Field(description="区划快照版本")
    root: RegionOut


def _out(r: Region) -> RegionOut:
    return RegionOut(
        code=r.code,
        name=r.name,
        parent_code=r.parent_code,
        level=r.level,
        is_zone=r.is_zone,
        status=r.status,
        retired_on=r.retired_on,
        successor_code=r.successor_code,
        note=r.note,
    )


@router.get("", response_model=RegionTree, summary="区划树(浙江省)")
async def tree(
    _: PrincipalDep,
    session: SessionDep,
    include_retired: Annotated[bool, Query(description="是否包含已撤销代码")] = False,
) -> RegionTree:
    async with session.begin():
        rows = (await session.scalars(select(Region).order_by(Region.code))).all()
    nodes = {r.code: _out(r) for r in rows if include_retired or r.status == "active"}
    root = None
    for node in nodes.values():
        if node.parent_code and node.parent_code in nodes:
            nodes[node.parent_code].children.append(node)
        elif node.level == "province":
            root = node
    if root is None:
        raise not_found("区划")
    return RegionTree(snapshot=SNAPSHOT, root=root)


@router.get("/{code}", response_model=RegionOut, summary="区划详情(含直接下级)")
async def one(code: str, _: PrincipalDep, session: SessionDep) -> RegionOut:
    async with session.begin():
        r = await session.get(Region, code)
        if r is None:
            raise not_found("区划")
        kids = (
            await session.scalars(
                select(Region).where(Region.parent_code == code, Region.status == "active").order_by(Region.code)
            )
        ).all()
    out = _out(r)
    out.children = [_out(k) for k in kids]
    return out
