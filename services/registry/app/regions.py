"""Region use cases: the region tree and one region with its children."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.db import regions as repo
from services.registry.db.models import Region
from services.registry.domain.regions import SNAPSHOT
from shared.problems import not_found


def _view(r: Region) -> dict[str, Any]:
    return {
        "code": r.code,
        "name": r.name,
        "parent_code": r.parent_code,
        "level": r.level,
        "is_zone": r.is_zone,
        "status": r.status,
        "retired_on": r.retired_on,
        "successor_code": r.successor_code,
        "note": r.note,
        "children": [],
    }


async def tree(session: AsyncSession, include_retired: bool) -> dict[str, Any]:
    rows = await repo.all_regions(session)
    nodes = {r.code: _view(r) for r in rows if include_retired or r.status == "active"}
    root = None
    for node in nodes.values():
        if node["parent_code"] and node["parent_code"] in nodes:
            nodes[node["parent_code"]]["children"].append(node)
        elif node["level"] == "province":
            root = node
    if root is None:
        raise not_found("区划")
    return {"snapshot": SNAPSHOT, "root": root}


async def one(session: AsyncSession, code: str) -> dict[str, Any]:
    r = await repo.get_region(session, code)
    if r is None:
        raise not_found("区划")
    out = _view(r)
    out["children"] = [_view(k) for k in await repo.active_children(session, code)]
    return out
