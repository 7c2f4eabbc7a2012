"""Use cases of the 服务专员 directory and of an enterprise's assignment, as the API calls them.

Each function is one transaction's worth of work in the caller's session (the route owns the transaction).
Results are plain mappings; the API shapes them into its response models.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.notification.app.assignment import fill_gaps, manual_assign, release_commissioner
from services.notification.db import assignments as assignment_repo
from services.notification.db import commissioners as commissioner_repo
from services.notification.db import enterprises as enterprise_repo
from services.notification.db.models import backbone
from shared.audit import record_audit
from shared.auth import Principal, Role, region_level
from shared.problems import Problem, field_error, not_found

COMMISSIONER_FIELDS = ("id", "name", "mobile", "email", "region", "level", "capacity", "active")
HISTORY_FIELDS = ("commissioner_id", "previous_commissioner_id", "tier", "level", "reason", "actor", "at")


async def view(session: AsyncSession, row: Mapping[str, Any]) -> dict[str, Any]:
    """The commissioner with its current load."""
    return {**{k: row[k] for k in COMMISSIONER_FIELDS}, "load": await commissioner_repo.load(session, row["id"])}


async def visible(session: AsyncSession, principal: Principal, cid: str) -> RowMapping:
    """The commissioner if the caller may see it (itself, or an official/admin of its region); else 404."""
    row = await commissioner_repo.get(session, cid)
    if row is None:
        raise not_found("服务专员")
    if principal.role == Role.COMMISSIONER and principal.sub == cid:
        return row
    if (principal.is_official or principal.role == Role.ADMIN) and principal.covers_region(row["region"]):
        return row
    raise not_found("服务专员")


async def create(session: AsyncSession, principal: Principal, body: Mapping[str, Any]) -> dict[str, Any]:
    """A new commissioner of the caller's jurisdiction; waiting enterprises of its area are assigned at once."""
    if region_level(body["region"]) != body["level"]:
        raise field_error("region", f"层级 {body['level']} 与行政区划 {body['region']} 不一致")
    if not principal.covers_region(body["region"]):
        raise Problem(403, "不能在管辖范围外设置服务专员 (region outside your jurisdiction)")
    cid = body.get("id") or f"cm-{uuid.uuid4().hex[:12]}"
    if await commissioner_repo.exists(session, cid):
        raise Problem(409, f"服务专员编号已存在: {cid}")
    values = {k: v for k, v in body.items() if k != "id"}
    await commissioner_repo.insert(session, cid, values)
    await record_audit(session, backbone, principal, "commissioner.create", "commissioner", cid, after=values)
    if body["active"]:
        await fill_gaps(session, body["region"], body["level"], "新增服务专员", principal)
    row = await commissioner_repo.get(session, cid)
    assert row is not None
    return await view(session, row)


async def listing(
    session: AsyncSession, principal: Principal, *, region: str | None, level: str | None, active: bool | None
) -> list[dict[str, Any]]:
    rows = await commissioner_repo.listing(session, region=region, level=level, active=active)
    return [await view(session, r) for r in rows if principal.covers_region(r["region"])]


async def detail(session: AsyncSession, principal: Principal, cid: str) -> dict[str, Any]:
    return await view(session, await visible(session, principal, cid))


async def change(session: AsyncSession, principal: Principal, cid: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Edit or deactivate; a deactivated commissioner's enterprises are reassigned, more room fills gaps."""
    for k in ("name", "mobile", "capacity", "active"):
        if k in changes and changes[k] is None:
            raise field_error(k, "不能为空")
    row = await commissioner_repo.get(session, cid, for_update=True)
    if row is None or not principal.covers_region(row["region"]):
        raise not_found("服务专员")
    if changes:
        await commissioner_repo.change(session, cid, changes)
        await record_audit(session, backbone, principal, "commissioner.update", "commissioner", cid,
                           before={k: row[k] for k in changes}, after=changes)
    if changes.get("active") is False and row["active"]:
        await release_commissioner(session, cid, principal)
    elif changes.get("active") or ("capacity" in changes and changes["capacity"] > row["capacity"]):
        await fill_gaps(session, row["region"], row["level"], "服务专员可用", principal)
    new = await commissioner_repo.get(session, cid)
    assert new is not None
    return await view(session, new)


async def served_enterprises(session: AsyncSession, principal: Principal, cid: str) -> list[dict[str, Any]]:
    await visible(session, principal, cid)
    return [
        {"uscc": r["uscc"], "name": r["name"], "region_code": r["region_code"], "tier": r["tier"],
         "level": r["level"], "assigned_at": r["assigned_at"]}
        for r in await assignment_repo.served(session, cid)
    ]


async def assignment_view(session: AsyncSession, principal: Principal, uscc: str) -> dict[str, Any]:
    """The enterprise's commissioner and assignment history, for whoever may see the enterprise."""
    ent = await enterprise_repo.get(session, uscc)
    if ent is None:
        raise not_found("企业")
    cur = await assignment_repo.current(session, uscc)
    allowed = principal.can_see_enterprise(uscc, ent["region_code"]) and principal.role != Role.COMMISSIONER
    if principal.role == Role.COMMISSIONER:
        allowed = cur is not None and cur["commissioner_id"] == principal.sub
    if principal.role == Role.AGENCY:
        allowed = False
    if not allowed:
        raise not_found("企业")
    out: dict[str, Any] = {
        "uscc": uscc, "status": "none",
        "history": [{k: h[k] for k in HISTORY_FIELDS} for h in await assignment_repo.history(session, uscc)],
    }
    if cur is not None:
        out.update(status=cur["status"], tier=cur["tier"], level=cur["level"], target_region=cur["target_region"])
        if cur["commissioner_id"]:
            row = await commissioner_repo.get(session, cur["commissioner_id"])
            assert row is not None
            out["commissioner"] = await view(session, row)
    return out


async def reassign(
    session: AsyncSession, principal: Principal, uscc: str, commissioner_id: str, reason: str
) -> dict[str, Any]:
    """An official's manual reassignment within their jurisdiction."""
    region = await enterprise_repo.region_of(session, uscc)
    if region is None or not principal.covers_region(region):
        raise not_found("企业")
    error = await manual_assign(session, uscc, commissioner_id, reason, principal)
    if error == "not_found":
        raise field_error("commissioner_id", "服务专员不存在或不在您的管辖范围内", status=404)
    if error == "capacity":
        raise Problem(409, "该服务专员已达服务上限 (commissioner at capacity)")
    if error:
        raise field_error("commissioner_id", error)
    return await assignment_view(session, principal, uscc)
