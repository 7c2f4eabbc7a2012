"""Cultivation pools (培育库): entry by nomination or rule result, exit with reason, published lists."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from services.registry import repo
from services.registry.api.enterprises import WriterDep
from services.registry.api.schemas import PoolEntryIn, PoolExitIn, PoolLevel, PoolMembershipOut
from services.registry.db.models import Enterprise, Pool, PoolMembership, backbone
from services.registry.domain import classify
from services.registry.events import payloads as ev
from shared.audit import record_audit
from shared.auth import Role, region_covers
from shared.deps import PrincipalDep, SessionDep
from shared.problems import Problem, field_error, not_found

router = APIRouter(prefix="/api/v1/pools", tags=["pools 培育库"])

RegionPath = Annotated[str, Path(pattern=r"^\d{6}$", description="培育库所属区划")]


class PoolMemberOut(BaseModel):
    uscc: str
    name: str = Field(description="企业名称")
    region_code: str
    track: str = Field(description="培育方向")
    year: int = Field(description="入库年度")
    basis: str = Field(description="入库方式")
    entered_on: date
    exited_on: date | None = None


class PoolListOut(BaseModel):
    level: str
    region_code: str
    region_name: str | None
    year: int | None = Field(description="公布年度(空=当前)")
    pools: list[dict[str, object]] = Field(description="各方向培育库")
    members: list[PoolMemberOut]


@router.post("/{level}/{region}/members", status_code=201, response_model=PoolMembershipOut, summary="入库")
async def enter(
    level: PoolLevel, region: RegionPath, body: PoolEntryIn, principal: WriterDep, session: SessionDep
) -> PoolMembershipOut:
    async with session.begin():
        if not principal.covers_region(region):
            raise not_found("培育库")
        regions = await repo.region_index(session)
        repo.check_pool_region(level, region, regions)
        ent = await repo.get_visible(session, principal, body.uscc, for_update=True)
        if ent.status != "active":
            raise Problem(409, "企业已注销,不能入库")
        if not region_covers(region, ent.region_code):
            raise field_error("uscc", f"企业所在区划 {ent.region_code} 不属于培育库区划 {region}")
        pool = await repo.get_or_create_pool(session, level, region, body.track)
        pool_name = pool.name
        active = await session.scalar(
            select(PoolMembership.id).where(
                PoolMembership.pool_id == pool.id, PoolMembership.uscc == ent.uscc, PoolMembership.exited_on.is_(None)
            )
        )
        if active is not None:
            raise Problem(409, f"企业已在{pool_name}中", errors=[{"field": "uscc", "message": "已在库"}])
        m = PoolMembership(
            pool_id=pool.id,
            uscc=ent.uscc,
            year=body.year,
            basis=body.basis,
            reason=body.reason,
            entered_on=repo.today(),
            entered_by=principal.sub,
        )
        session.add(m)
        try:
            await session.flush()
        except IntegrityError as exc:
            raise Problem(409, f"企业已在{pool_name}中", errors=[{"field": "uscc", "message": "已在库"}]) from exc
        await repo.pool_move_event(session, ent, pool, body.year, body.reason or body.basis, ev.POOL_ENTERED)
        await record_audit(
            session,
            backbone,
            principal,
            "pool.enter",
            "pool_membership",
            str(m.id),
            after={"pool": pool.name, "uscc": ent.uscc, "year": body.year, "basis": body.basis},
        )
    return PoolMembershipOut(
        pool_id=pool.id,
        level=level,
        pool_region=region,
        track=pool.track,
        year=m.year,
        basis=m.basis,
        entered_on=m.entered_on,
    )


@router.post("/{level}/{region}/members/{uscc}/exit", response_model=PoolMembershipOut, summary="出库")
async def exit_(
    level: PoolLevel, region: RegionPath, uscc: str, body: PoolExitIn, principal: WriterDep, session: SessionDep
) -> PoolMembershipOut:
    async with session.begin():
        if not principal.covers_region(region):
            raise not_found("培育库")
        ent = await repo.get_visible(session, principal, uscc, for_update=True)
        row = (
            await session.execute(
                select(PoolMembership, Pool)
                .join(Pool, Pool.id == PoolMembership.pool_id)
                .where(
                    Pool.level == level,
                    Pool.region_code == region,
                    Pool.track == body.track,
                    PoolMembership.uscc == ent.uscc,
                    PoolMembership.exited_on.is_(None),
                )
                .with_for_update(of=PoolMembership)
            )
        ).first()
        if row is None:
            raise not_found("在库记录")
        m, pool = row
        m.exited_on = repo.today()
        m.exit_reason = body.reason
        m.exited_by = principal.sub
        await repo.pool_move_event(session, ent, pool, m.year, body.reason, ev.POOL_EXITED)
        await record_audit(
            session,
            backbone,
            principal,
            "pool.exit",
            "pool_membership",
            str(m.id),
            after={"pool": pool.name, "uscc": ent.uscc, "reason": body.reason},
        )
    return PoolMembershipOut(
        pool_id=pool.id,
        level=level,
        pool_region=region,
        track=pool.track,
        year=m.year,
        basis=m.basis,
        entered_on=m.entered_on,
        exited_on=m.exited_on,
        exit_reason=m.exit_reason,
    )


@router.get("/{level}/{region}", response_model=PoolListOut, summary="培育库公布名单")
async def published_list(
    level: PoolLevel,
    region: RegionPath,
    principal: PrincipalDep,
    session: SessionDep,
    year: Annotated[
        int | None, Query(ge=2000, le=2100, description="年度: 入库年度不晚于该年且年末未出库的名单;不填为当前在库")
    ] = None,
    track: Annotated[str | None, Query(description="培育方向(称号 id)")] = None,
) -> PoolListOut:
    if principal.role == Role.ENTERPRISE:
        raise Problem(403, "企业用户无权查看培育库名单")
    if track is not None and track not in classify.TIERS:
        raise field_error("track", "培育方向无效")
    async with session.begin():
        if not principal.covers_region(region):
            raise not_found("培育库")
        regions = await repo.region_index(session)
        repo.check_pool_region(level, region, regions)
        pstmt = select(Pool).where(Pool.level == level, Pool.region_code == region)
        if track:
            pstmt = pstmt.where(Pool.track == track)
        pools = (await session.scalars(pstmt.order_by(Pool.track))).all()
        ids = [p.id for p in pools]
        by_id = {p.id: p for p in pools}
        stmt = (
            select(PoolMembership, Enterprise)
            .join(Enterprise, Enterprise.uscc == PoolMembership.uscc)
            .where(PoolMembership.pool_id.in_(ids))
        )
        if year is None:
            stmt = stmt.where(PoolMembership.exited_on.is_(None))
        else:
            end = repo.year_end(year)
            stmt = stmt.where(
                PoolMembership.year <= year,
                or_(PoolMembership.exited_on.is_(None), PoolMembership.exited_on > end),
            )
        rows = (await session.execute(stmt.order_by(PoolMembership.pool_id, Enterprise.name))).all() if ids else []
    members = [
        PoolMemberOut(
            uscc=e.uscc,
            name=e.name,
            region_code=e.region_code,
            track=by_id[m.pool_id].track,
            year=m.year,
            basis=m.basis,
            entered_on=m.entered_on,
            exited_on=m.exited_on,
        )
        for m, e in rows
    ]
    counts: dict[int, int] = {}
    for m, _ in rows:
        counts[m.pool_id] = counts.get(m.pool_id, 0) + 1
    return PoolListOut(
        level=level,
        region_code=region,
        region_name=regions.name(region),
        year=year,
        pools=[{"pool_id": p.id, "name": p.name, "track": p.track, "count": counts.get(p.id, 0)} for p in pools],
        members=members,
    )
