"""Who may see and act on what in evaluation: enterprises and applications within the caller's jurisdiction
(404 outside it, so ids don't leak) and the official level a step needs (403)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from services.evaluation.db import applications as applications_db
from services.evaluation.db import commissioners
from services.evaluation.db.models import Application, Enterprise
from shared.auth import Principal, Role
from shared.problems import Problem, not_found

_ROLE_OF_LEVEL = {"county": Role.COUNTY, "city": Role.CITY, "province": Role.PROVINCE}
_LEVEL_ZH = {"county": "县级", "city": "市级", "province": "省级"}


async def can_see(session: AsyncSession, principal: Principal, uscc: str, region_code: str | None) -> bool:
    """Whether the caller may read the enterprise: itself, an official's territory, a commissioner only the
    enterprises currently assigned to them (their token region plays no part, as in the registry)."""
    if principal.role == Role.COMMISSIONER:
        return await commissioners.is_assigned(session, uscc, principal.sub)
    return principal.can_see_enterprise(uscc, region_code)


async def visible_enterprise(session: AsyncSession, principal: Principal, uscc: str) -> Enterprise:
    """The enterprise if the caller may see it; 404 otherwise (ids don't leak)."""
    ent = await session.get(Enterprise, uscc)
    if ent is None or not await can_see(session, principal, uscc, ent.region_code):
        raise not_found("企业")
    return ent


async def visible_application(
    session: AsyncSession, principal: Principal, app_id: uuid.UUID, *, lock: bool = True
) -> Application:
    """The application (locked for update unless ``lock`` is false) if the caller may see it; 404 otherwise."""
    app = await applications_db.get(session, app_id, lock=lock)
    if app is None or not await can_see(session, principal, app.uscc, app.region_code):
        raise not_found("申请")
    return app


def require_official_level(principal: Principal, level: str, what: str) -> None:
    """The caller must be an official of ``level``; 403 otherwise. The admin configures (rule sets) but takes no
    step in a recognition (separation of duties)."""
    if principal.role == Role.ADMIN:
        raise Problem(403, f"管理员负责配置,不办理认定事项:{what}须由主管部门工作人员办理 (admin takes no workflow step)")
    if principal.role != _ROLE_OF_LEVEL.get(level):
        zh = _LEVEL_ZH.get(level, level)
        raise Problem(403, f"{what}须由{zh}主管部门办理 (needs a {level} official; you are {principal.role.value})")


def deciding_level(title_level: str) -> str:
    """The government level that decides (announces, resolves objections to, revokes) a title of this level:
    national titles are handled by the province."""
    return "province" if title_level in ("province", "national") else title_level
