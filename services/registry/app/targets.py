"""Target use cases: set and list targets, and progress (target vs actual) rolled up the region tree."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.db import targets as repo
from services.registry.db.models import backbone
from services.registry.db.regions import get_region, region_index
from services.registry.domain.commands import TargetIn
from services.registry.domain.dates import today, year_end
from services.registry.events import contracts as ev
from shared.audit import record_audit
from shared.auth import Principal, Role, region_covers
from shared.events.outbox import emit
from shared.problems import Problem, field_error, not_found

Key = tuple[str, str, str]  # track, measure, level


def check_reader(principal: Principal, region: str | None) -> str:
    """The region a reader asks about (default: their own); 403 for roles without targets, 404 outside scope."""
    if principal.role in (Role.ENTERPRISE, Role.COMMISSIONER):
        raise Problem(403, "当前角色无权查看目标")
    region = region or principal.region
    if not principal.covers_region(region):
        raise not_found("区划")
    return region


async def put_target(session: AsyncSession, principal: Principal, body: TargetIn) -> dict[str, Any]:
    if not principal.covers_region(body.region_code):
        raise Problem(403, "区划不在您的管辖范围内", errors=[{"field": "region_code", "message": "不在管辖范围内"}])
    if await get_region(session, body.region_code) is None:
        raise field_error("region_code", "区划代码不存在")
    values = body.model_dump()
    tid = await repo.upsert(session, values)
    await record_audit(session, backbone, principal, "target.set", "target", str(tid), after=values)
    await emit(session, backbone, ev.TARGET_SET, body.region_code, ev.TargetSet(**values),
               regioncode=body.region_code)
    return {"id": tid, **values}


async def list_targets(
    session: AsyncSession, principal: Principal, region: str | None, year: int | None
) -> list[dict[str, Any]]:
    region = check_reader(principal, region)
    return [
        {
            "id": t.id,
            "region_code": t.region_code,
            "track": t.track,
            "measure": t.measure,
            "level": t.level,
            "year": t.year,
            "target": t.target,
            "source": t.source,
        }
        for t in await repo.within(session, region, year)
    ]


async def progress(session: AsyncSession, principal: Principal, year: int, region: str | None) -> dict[str, Any]:
    region = check_reader(principal, region)
    as_of = min(today(), year_end(year))
    regions = await region_index(session)
    node = regions.regions.get(region)
    if node is None or node.status != "active":
        raise not_found("区划")
    active = {c: r for c, r in regions.regions.items() if r.status == "active"}
    children_of: dict[str, list[str]] = defaultdict(list)
    for c, r in sorted(active.items()):
        if r.parent_code:
            children_of[r.parent_code].append(c)
    own: dict[str, dict[Key, int]] = defaultdict(dict)
    for t in await repo.within(session, region, year):
        own[t.region_code][(t.track, t.measure, t.level)] = t.target
    rec = await repo.recognised_counts(session, region, as_of)
    pool = await repo.pool_counts(session, region, year, as_of)

    def actual(code: str, key: Key) -> int:
        track, measure, level = key
        source = rec if measure == "recognised" else pool
        return sum(
            n
            for rc, tr, lv, n in source
            if rc and region_covers(code, rc) and tr == track and (level == "any" or lv == level)
        )

    def rollup(code: str, key: Key) -> int | None:
        if key in own.get(code, {}):
            return own[code][key]
        return children_sum(code, key)

    def children_sum(code: str, key: Key) -> int | None:
        vals = [v for c in children_of.get(code, []) if (v := rollup(c, key)) is not None]
        return sum(vals) if vals else None

    def keys_under(code: str) -> set[Key]:
        out: set[Key] = set()
        for rc, d in own.items():
            if region_covers(code, rc) or rc == code:
                out.update(d)
        return out

    def build(code: str, keys: set[Key]) -> dict[str, Any]:
        rows = []
        for key in sorted(keys):
            tgt = own.get(code, {}).get(key)
            kids = children_sum(code, key)
            act = actual(code, key)
            base = tgt if tgt is not None else kids
            rows.append(
                {
                    "track": key[0],
                    "measure": key[1],
                    "level": key[2],
                    "target": tgt,
                    "children_target": kids,
                    "actual": act,
                    "completion_pct": f"{act * 100 / base:.2f}" if base else None,
                }
            )
        return {"region_code": code, "name": active[code].name, "rows": rows}

    keys = keys_under(region)
    return {
        "year": year,
        "as_of": as_of,
        "region": build(region, keys),
        "children": [build(c, keys) for c in children_of.get(region, [])],
    }
