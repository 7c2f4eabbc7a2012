"""Targets per region, track, measure, level and year; progress = target vs actual, aggregated up the tree."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import func, or_, select
from sqlalchemy.dialects.postgresql import insert

from services.registry import repo
from services.registry.api.enterprises import WriterDep
from services.registry.api.schemas import TargetIn
from services.registry.db.models import Enterprise, Pool, PoolMembership, Recognition, Region, Target, backbone
from shared.audit import record_audit
from shared.auth import Principal, Role, region_covers
from shared.deps import PrincipalDep, SessionDep
from shared.problems import Problem, field_error, not_found

router = APIRouter(prefix="/api/v1/targets", tags=["targets 目标"])

Key = tuple[str, str, str]  # track, measure, level


class TargetOut(TargetIn):
    id: int


class ProgressRow(BaseModel):
    track: str = Field(description="梯度称号 id")
    measure: str = Field(description="recognised 认定 / pool 入库")
    level: str = Field(description="称号或培育库层级(any=全部层级)")
    target: int | None = Field(description="本级目标")
    children_target: int | None = Field(description="下级目标合计(逐级汇总)")
    actual: int = Field(description="实际数(含下级)")
    completion_pct: str | None = Field(description="完成率(%),对本级目标,无本级目标时对下级合计")


class ProgressNode(BaseModel):
    region_code: str
    name: str
    rows: list[ProgressRow]


class ProgressOut(BaseModel):
    year: int
    as_of: date = Field(description="统计时点(年末或今天)")
    region: ProgressNode
    children: list[ProgressNode]


def _reader(principal: Principal) -> None:
    if principal.role in (Role.ENTERPRISE, Role.COMMISSIONER):
        raise Problem(403, "当前角色无权查看目标")


@router.put("", response_model=TargetOut, summary="设定目标(同区划、方向、口径、层级、年度唯一)")
async def put_target(body: TargetIn, principal: WriterDep, session: SessionDep) -> TargetOut:
    async with session.begin():
        if not principal.covers_region(body.region_code):
            raise Problem(403, "区划不在您的管辖范围内", errors=[{"field": "region_code", "message": "不在管辖范围内"}])
        if await session.get(Region, body.region_code) is None:
            raise field_error("region_code", "区划代码不存在")
        ins = insert(Target).values(**body.model_dump())
        stmt = ins.on_conflict_do_update(
            index_elements=["region_code", "track", "measure", "level", "year"],
            set_={"target": ins.excluded.target, "source": ins.excluded.source},
        ).returning(Target.id)
        tid = (await session.execute(stmt)).scalar_one()
        await record_audit(session, backbone, principal, "target.set", "target", str(tid), after=body.model_dump())
    return TargetOut(id=tid, **body.model_dump())


@router.get("", response_model=list[TargetOut], summary="目标列表(本区划及下级)")
async def list_targets(
    principal: PrincipalDep,
    session: SessionDep,
    region: Annotated[str | None, Query(pattern=r"^\d{6}$", description="区划(含下级)")] = None,
    year: Annotated[int | None, Query(ge=2000, le=2100, description="年度")] = None,
) -> list[TargetOut]:
    _reader(principal)
    region = region or principal.region
    if not principal.covers_region(region):
        raise not_found("区划")
    async with session.begin():
        stmt = select(Target).where(repo.region_cond(Target.region_code, region))
        if year:
            stmt = stmt.where(Target.year == year)
        rows = (await session.scalars(stmt.order_by(Target.region_code, Target.track, Target.year))).all()
    return [
        TargetOut(
            id=t.id,
            region_code=t.region_code,
            track=t.track,
            measure=t.measure,
            level=t.level,
            year=t.year,
            target=t.target,
            source=t.source,
        )
        for t in rows
    ]


@router.get("/progress", response_model=ProgressOut, summary="目标完成进度(本级及各下级)")
async def progress(
    principal: PrincipalDep,
    session: SessionDep,
    year: Annotated[int, Query(ge=2000, le=2100, description="目标年度")],
    region: Annotated[str | None, Query(pattern=r"^\d{6}$", description="区划(默认本人辖区)")] = None,
) -> ProgressOut:
    _reader(principal)
    region = region or principal.region
    if not principal.covers_region(region):
        raise not_found("区划")
    as_of = min(repo.today(), repo.year_end(year))
    async with session.begin():
        regions = await repo.region_index(session)
        node = regions.regions.get(region)
        if node is None or node.status != "active":
            raise not_found("区划")
        active = {c: r for c, r in regions.regions.items() if r.status == "active"}
        children_of: dict[str, list[str]] = defaultdict(list)
        for c, r in sorted(active.items()):
            if r.parent_code:
                children_of[r.parent_code].append(c)
        targets = (
            await session.scalars(
                select(Target).where(Target.year == year, repo.region_cond(Target.region_code, region))
            )
        ).all()
        own: dict[str, dict[Key, int]] = defaultdict(dict)
        for t in targets:
            own[t.region_code][(t.track, t.measure, t.level)] = t.target
        # actual recognitions valid at as_of, by the recognition's region
        rec = (
            await session.execute(
                select(Recognition.region_code, Recognition.tier, Recognition.level, func.count())
                .where(
                    repo.region_cond(Recognition.region_code, region),
                    Recognition.valid_from <= as_of,
                    or_(Recognition.valid_to.is_(None), Recognition.valid_to >= as_of),
                    or_(Recognition.status == "valid", Recognition.ended_on > as_of),
                )
                .group_by(Recognition.region_code, Recognition.tier, Recognition.level)
            )
        ).all()
        # pool members at the end of the year (cohort year ≤ year, not exited by as_of), by enterprise region
        pool = (
            await session.execute(
                select(Enterprise.region_code, Pool.track, Pool.level, func.count())
                .select_from(PoolMembership)
                .join(Pool, Pool.id == PoolMembership.pool_id)
                .join(Enterprise, Enterprise.uscc == PoolMembership.uscc)
                .where(
                    repo.region_cond(Enterprise.region_code, region),
                    PoolMembership.year <= year,
                    or_(PoolMembership.exited_on.is_(None), PoolMembership.exited_on > as_of),
                )
                .group_by(Enterprise.region_code, Pool.track, Pool.level)
            )
        ).all()

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

    def build(code: str, keys: set[Key]) -> ProgressNode:
        rows = []
        for key in sorted(keys):
            tgt = own.get(code, {}).get(key)
            kids = children_sum(code, key)
            act = actual(code, key)
            base = tgt if tgt is not None else kids
            pct = f"{act * 100 / base:.2f}" if base else None
            rows.append(
                ProgressRow(
                    track=key[0],
                    measure=key[1],
                    level=key[2],
                    target=tgt,
                    children_target=kids,
                    actual=act,
                    completion_pct=pct,
                )
            )
        return ProgressNode(region_code=code, name=active[code].name, rows=rows)

    keys = keys_under(region)
    return ProgressOut(
        year=year,
        as_of=as_of,
        region=build(region, keys),
        children=[build(c, keys) for c in children_of.get(region, [])],
    )
