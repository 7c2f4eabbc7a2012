"""Policy simulation: a draft rule set (or a changed parameter) vs the rule set in force; nothing stored."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services.evaluation.api.deps import OfficialDep, SessionDep
from services.evaluation.api.schemas import Change, SimulationIn, SimulationOut
from services.evaluation.app.policy_simulation import simulate_policy
from services.evaluation.config import get_config

__all__ = ["Change", "SimulationIn", "router", "simulate"]

router = APIRouter(prefix="/api/v1", tags=["simulations"])


@router.post("/simulations", response_model=SimulationOut,
             summary="政策模拟: 草案与现行规则的达标企业数对比(不存储、不发布)")
async def simulate(body: SimulationIn, session: SessionDep, principal: OfficialDep) -> dict[str, Any]:
    return await simulate_policy(
        session,
        region=principal.region,
        covers=principal.covers_region,
        as_of=body.as_of or get_config().decision_date(),
        draft=body.draft,
        draft_yaml=body.draft_yaml,
        base_ruleset=body.base_ruleset,
        changes=[(c.path, c.value) for c in body.changes],
        list_limit=body.list_limit,
    )
