"""服务专员 directory and assignments."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select, update

from services.notification.assigning import fill_gaps, manual_assign, release_commissioner
from services.notification.db.models import assignment_history, assignments, backbone, commissioners, enterprises
from shared.audit import record_audit
from shared.auth import Principal, Role, region_level
from shared.deps import PrincipalDep, SessionDep, require_roles
from shared.problems import Problem, field_error, not_found

router = APIRouter(prefix="/api/v1", tags=["服务专员 commissioners"])

OfficialOrAdmin = Annotated[Principal, Depends(require_roles(Role.PROVINCE, Role.CITY, Role.COUNTY))]

MOBILE = r"^1\d{10}$"
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class CommissionerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{3,64}$", description="专员编号(即登录令牌 sub),不填自动生成")
    name: str = Field(min_length=1, max_length=100, description="姓名")
    mobile: str = Field(pattern=MOBILE, description="手机号")
    email: str | None = Field(None, pattern=EMAIL, max_length=200, description="电子邮箱")
    region: str = Field(pattern=r"^\d{6}$", description="所属行政区划代码 (GB/T 2260)")
    level: Literal["city", "county"] = Field(description="层级:city 设区市 / county 县(市、区)")
    capacity: int = Field(20, ge=1, le=1000, description="最多服务企业数")
    active: bool = Field(True, description="是否在岗")


class CommissionerPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=100, description="姓名")
    mobile: str | None = Field(None, pattern=MOBILE, description="手机号")
    email: str | None = Field(None, pattern=EMAIL, max_length=200, description="电子邮箱")
    capacity: int | None = Field(None, ge=1, le=1000, description="最多服务企业数")
    active: bool | None = Field(None, description="是否在岗;停用后其服务企业自动重新指派")


class CommissionerOut(BaseModel):
    id: str = Field(description="专员编号")
    name: str = Field(description="姓名")
    mobile: str = Field(description="手机号")
    email: str | None = Field(description="电子邮箱")
    region: str = Field(description="所属行政区划代码")
    level: str = Field(description="层级 city/county")
    capacity: int = Field(description="最多服务企业数")
    active: bool = Field(description="是否在岗")
    load: int = Field(description="当前服务企业数")


class ServedEnterprise(BaseModel):
    uscc: str = Field(description="统一社会信用代码")
    name: str | None = Field(description="企业名称")
    region_code: str = Field(description="企业所在行政区划")
    tier: str = Field(description="决定服务层级的认定类型")
    level: str = Field(description="服务层级")
    assigned_at: datetime = Field(description="指派时间")


class HistoryOut(BaseModel):
    commissioner_id: str | None = Field(description="新服务专员(空表示无)")
    previous_commissioner_id: str | None = Field(description="原服务专员")
    tier: str | None = Field(description="认定类型")
    level: str | None = Field(description="服务层级")
    reason: str = Field(description="原因")
    actor: str = Field(description="操作人")
    at: datetime = Field(description="时间")


class AssignmentOut(BaseModel):
    uscc: str = Field(description="统一社会信用代码")
    status: str = Field(description="assigned 已指派 / unassigned 缺位待派 / none 无需专员")
    tier: str | None = Field(None, description="决定服务层级的认定类型")
    level: str | None = Field(None, description="服务层级 city/county")
    target_region: str | None = Field(None, description="专员所属辖区")
    commissioner: CommissionerOut | None = Field(None, description="当前服务专员")
    history: list[HistoryOut] = Field(default_factory=list, description="指派历史(新→旧)")


class ReassignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    commissioner_id: str = Field(min_length=1, max_length=64, description="新服务专员编号")
    reason: str = Field(min_length=1, max_length=150, description="调整原因")


async def _load(session: Any, cid: str) -> int:
    return int((await session.execute(select(func.count()).where(assignments.c.commissioner_id == cid))).scalar_one())


async def _out(session: Any, row: Any) -> CommissionerOut:
    return CommissionerOut(**{k: row[k] for k in ("id", "name", "mobile", "email", "region", "level", "capacity",
                                                   "active")}, load=await _load(session, row["id"]))


async def _visible_commissioner(session: Any, principal: Principal, cid: str) -> Any:
    row = (await session.execute(select(commissioners).where(commissioners.c.id == cid))).mappings().first()
    if row is None:
        raise not_found("服务专员")
    if principal.role == Role.COMMISSIONER and principal.sub == cid:
        return row
    if (principal.is_official or principal.role == Role.ADMIN) and principal.covers_region(row["region"]):
        return row
    raise not_found("服务专员")


@router.post("/commissioners", status_code=201, response_model=CommissionerOut, summary="新增服务专员")
async def create_commissioner(body: CommissionerIn, session: SessionDep, principal: OfficialOrAdmin) -> CommissionerOut:
    if region_level(body.region) != body.level:
        raise field_error("region", f"层级 {body.level} 与行政区划 {body.region} 不一致")
    if not principal.covers_region(body.region):
        raise Problem(403, "不能在管辖范围外设置服务专员 (region outside your jurisdiction)")
    cid = body.id or f"cm-{uuid.uuid4().hex[:12]}"
    async with session.begin():
        exists = (await session.execute(select(commissioners.c.id).where(commissioners.c.id == cid))).first()
        if exists:
            raise Problem(409, f"服务专员编号已存在: {cid}")
        values = body.model_dump(exclude={"id"})
        await session.execute(commissioners.insert().values(id=cid, **values))
        await record_audit(session, backbone, principal, "commissioner.create", "commissioner", cid, after=values)
        if body.active:
            await fill_gaps(session, body.region, body.level, "新增服务专员", principal)
        row = (await session.execute(select(commissioners).where(commissioners.c.id == cid))).mappings().one()
        return await _out(session, row)


@router.get("/commissioners", response_model=list[CommissionerOut], summary="服务专员列表(管辖范围内)")
async def list_commissioners(
    session: SessionDep,
    principal: OfficialOrAdmin,
    region: Annotated[str | None, Query(pattern=r"^\d{6}$", description="按行政区划筛选")] = None,
    level: Annotated[Literal["city", "county"] | None, Query(description="按层级筛选")] = None,
    active: Annotated[bool | None, Query(description="按在岗状态筛选")] = None,
) -> list[CommissionerOut]:
    async with session.begin():
        q = select(commissioners).order_by(commissioners.c.region, commissioners.c.id)
        if region:
            q = q.where(commissioners.c.region == region)
        if level:
            q = q.where(commissioners.c.level == level)
        if active is not None:
            q = q.where(commissioners.c.active.is_(active))
        rows = (await session.execute(q)).mappings().all()
        return [await _out(session, r) for r in rows if principal.covers_region(r["region"])]


@router.get("/commissioners/{cid}", response_model=CommissionerOut, summary="服务专员详情")
async def get_commissioner(cid: str, session: SessionDep, principal: PrincipalDep) -> CommissionerOut:
    async with session.begin():
        return await _out(session, await _visible_commissioner(session, principal, cid))


@router.patch("/commissioners/{cid}", response_model=CommissionerOut, summary="修改或停用服务专员")
async def patch_commissioner(
    cid: str, body: CommissionerPatch, session: SessionDep, principal: OfficialOrAdmin
) -> CommissionerOut:
    changes = body.model_dump(exclude_unset=True)
    for k in ("name", "mobile", "capacity", "active"):
        if k in changes and changes[k] is None:
            raise field_error(k, "不能为空")
    async with session.begin():
        row = (
            await session.execute(select(commissioners).where(commissioners.c.id == cid).with_for_update())
        ).mappings().first()
        if row is None or not principal.covers_region(row["region"]):
            raise not_found("服务专员")
        if changes:
            await session.execute(
                update(commissioners).where(commissioners.c.id == cid).values(**changes, updated_at=func.now())
            )
            await record_audit(session, backbone, principal, "commissioner.update", "commissioner", cid,
                               before={k: row[k] for k in changes}, after=changes)
        if changes.get("active") is False and row["active"]:
            await release_commissioner(session, cid, principal)
        elif changes.get("active") or ("capacity" in changes and changes["capacity"] > row["capacity"]):
            await fill_gaps(session, row["region"], row["level"], "服务专员可用", principal)
        new = (await session.execute(select(commissioners).where(commissioners.c.id == cid))).mappings().one()
        return await _out(session, new)


@router.get("/commissioners/{cid}/enterprises", response_model=list[ServedEnterprise], summary="服务专员负责的企业")
async def commissioner_enterprises(cid: str, session: SessionDep, principal: PrincipalDep) -> list[ServedEnterprise]:
    async with session.begin():
        await _visible_commissioner(session, principal, cid)
        rows = (
            await session.execute(
                select(assignments, enterprises.c.name)
                .join(enterprises, enterprises.c.uscc == assignments.c.uscc, isouter=True)
                .where(assignments.c.commissioner_id == cid)
                .order_by(assignments.c.uscc)
            )
        ).mappings().all()
        return [ServedEnterprise(uscc=r["uscc"], name=r["name"], region_code=r["region_code"], tier=r["tier"],
                                 level=r["level"], assigned_at=r["assigned_at"]) for r in rows]


async def _assignment_view(session: Any, principal: Principal, uscc: str) -> AssignmentOut:
    ent = (await session.execute(select(enterprises).where(enterprises.c.uscc == uscc))).mappings().first()
    if ent is None:
        raise not_found("企业")
    cur = (await session.execute(select(assignments).where(assignments.c.uscc == uscc))).mappings().first()
    allowed = principal.can_see_enterprise(uscc, ent["region_code"]) and principal.role != Role.COMMISSIONER
    if principal.role == Role.COMMISSIONER:
        allowed = cur is not None and cur["commissioner_id"] == principal.sub
    if principal.role == Role.AGENCY:
        allowed = False
    if not allowed:
        raise not_found("企业")
    hist = (
        await session.execute(
            select(assignment_history).where(assignment_history.c.uscc == uscc)
            .order_by(assignment_history.c.id.desc())
        )
    ).mappings().all()
    out = AssignmentOut(uscc=uscc, status="none", history=[HistoryOut(**{k: h[k] for k in HistoryOut.model_fields})
                                                          for h in hist])
    if cur is not None:
        out.status, out.tier, out.level, out.target_region = cur["status"], cur["tier"], cur["level"], cur[
            "target_region"]
        if cur["commissioner_id"]:
            row = (
                await session.execute(select(commissioners).where(commissioners.c.id == cur["commissioner_id"]))
            ).mappings().one()
            out.commissioner = await _out(session, row)
    return out


@router.get("/enterprises/{uscc}/commissioner", response_model=AssignmentOut, summary="企业的服务专员及指派历史")
async def enterprise_commissioner(uscc: str, session: SessionDep, principal: PrincipalDep) -> AssignmentOut:
    async with session.begin():
        return await _assignment_view(session, principal, uscc)


@router.post("/enterprises/{uscc}/commissioner", response_model=AssignmentOut, summary="人工调整服务专员")
async def reassign(uscc: str, body: ReassignIn, session: SessionDep, principal: OfficialOrAdmin) -> AssignmentOut:
    async with session.begin():
        region = (await session.execute(select(enterprises.c.region_code).where(enterprises.c.uscc == uscc))).scalar()
        if region is None or not principal.covers_region(region):
            raise not_found("企业")
        error = await manual_assign(session, uscc, body.commissioner_id, body.reason, principal)
        if error == "not_found":
            raise field_error("commissioner_id", "服务专员不存在或不在您的管辖范围内", status=404)
        if error == "capacity":
            raise Problem(409, "该服务专员已达服务上限 (commissioner at capacity)")
        if error:
            raise field_error("commissioner_id", error)
        return await _assignment_view(session, principal, uscc)
