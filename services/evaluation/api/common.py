"""Helpers shared by the evaluation routers: access checks and enterprise lookup."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.evaluation.db.models import Enterprise
from shared.auth import Principal, Role
from shared.problems import Problem, not_found


async def visible_enterprise(session: AsyncSession, principal: Principal, uscc: str) -> Enterprise:
    """The enterprise if the caller may see it; 404 otherwise (ids don't leak)."""
    ent = await session.get(Enterprise, uscc)
    if ent is None or not principal.can_see_enterprise(uscc, ent.region_code):
        raise not_found("企业")
    return ent


def require_official_level(principal: Principal, level: str, what: str) -> None:
    """The caller must be an official of ``level`` (admin passes); 403 otherwise."""
    if principal.role == Role.ADMIN:
        return
    role_for = {"county": Role.COUNTY, "city": Role.CITY, "province": Role.PROVINCE}
    if principal.role != role_for.get(level):
        zh = {"county": "县级", "city": "市级", "province": "省级"}.get(level, level)
        raise Problem(403, f"{what}须由{zh}主管部门办理 (needs a {level} official; you are {principal.role.value})")
