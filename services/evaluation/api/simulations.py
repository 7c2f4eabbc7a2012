"""Policy simulation: a draft rule set (or a changed parameter) vs the rule set in force; nothing stored."""

from __future__ import annotations

import copy
import json
from datetime import date
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.evaluation.app.evaluating import select_in_force
from services.evaluation.app.simulation import simulate_eligibility
from services.evaluation.config import get_config
from services.evaluation.db.ruleset_store import latest_rulesets
from shared.auth import Principal, Role
from shared.deps import SessionDep, require_roles
from shared.problems import Problem, field_error

router = APIRouter(prefix="/api/v1", tags=["simulations"])


class Change(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(min_length=1, description="参数路径,如 pass_score 或 items.0.bands.1.points")
    value: Any = Field(description="新取值")


class SimulationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    draft: dict[str, Any] | None = Field(None, description="规则集草案 (JSON)")
    draft_yaml: str | None = Field(None, max_length=500_000, description="规则集草案 (YAML 文本)")
    base_ruleset: str | None = Field(None, description="对照的现行规则集编号;缺省为同编号或同层级现行规则集")
    changes: list[Change] = Field(default_factory=list, description="在对照规则集上修改参数 (无草案时)")
    as_of: date | None = Field(None, description="决定日期;缺省为今天")
    list_limit: int = Field(200, ge=0, le=5000, description="返回的增减企业名单上限")


def _set_path(doc: Any, path: str, value: Any) -> None:
    parts = path.split(".")
    node = doc
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            try:
                idx = int(part)
            except ValueError:
                # address list elements by their code
                match = [n for n in node if isinstance(n, dict) and n.get("code") == part]
                if not match:
                    raise KeyError(path) from None
                idx = node.index(match[0])
            if not 0 <= idx < len(node):
                raise KeyError(path)
            if last:
                node[idx] = value
            else:
                node = node[idx]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                if part not in node:
                    raise KeyError(path)
                node = node[part]
        else:
            raise KeyError(path)


def _validate(doc: dict[str, Any]) -> Any:
    from services.evaluation.domain.engine import compile_ruleset
    from services.evaluation.domain.rules import RuleSet

    try:
        rs = RuleSet.model_validate(doc)
        compile_ruleset(rs)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise field_error(f"draft.{loc}" if loc else "draft", f"规则集草案无效: {err['msg']}") from exc
    except (ValueError, KeyError, AssertionError) as exc:
        raise field_error("draft", f"规则集草案无法编译: {exc}") from exc
    return rs


@router.post("/simulations", summary="政策模拟: 草案与现行规则的达标企业数对比(不存储、不发布)")
async def simulate(
    body: SimulationIn,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require_roles(Role.PROVINCE, Role.CITY, Role.COUNTY))],
) -> dict[str, Any]:
    as_of = body.as_of or get_config().decision_date()
    stored = [rs for _, rs in await latest_rulesets(session)]
    by_id = {str(rs.id): rs for rs in stored}
    draft_doc: dict[str, Any] | None = body.draft
    if body.draft_yaml is not None:
        try:
            loaded = yaml.safe_load(body.draft_yaml)
        except yaml.YAMLError as exc:
            raise field_error("draft_yaml", f"YAML 格式错误: {exc}") from exc
        if not isinstance(loaded, dict):
            raise field_error("draft_yaml", "规则集草案须为映射 (mapping)")
        draft_doc = loaded
    base = None
    if body.base_ruleset:
        base = by_id.get(body.base_ruleset)
        if base is None:
            raise field_error("base_ruleset", f"规则集 {body.base_ruleset} 不存在")
    if draft_doc is None:
        if base is None:
            raise field_error("draft", "须提供规则集草案,或对照规则集及参数修改 (draft or base_ruleset + changes)")
        if not body.changes:
            raise field_error("changes", "未提供任何参数修改")
        draft_doc = copy.deepcopy(json.loads(json.dumps(base.model_dump(mode="json"))))
        for ch in body.changes:
            try:
                _set_path(draft_doc, ch.path, ch.value)
            except KeyError as exc:
                raise field_error("changes", f"参数路径不存在: {ch.path}") from exc
    draft = _validate(draft_doc)
    if base is None:
        base = by_id.get(str(draft.id))
    if base is None:
        same_tier = [rs for rs in select_in_force(stored, as_of, draft.jurisdiction if draft.jurisdiction != "national"
                                                  else principal.region, str(draft.tier))]
        base = same_tier[0] if same_tier else None

    # eligibility only, streamed and evaluated off the event loop (services/evaluation/app/simulation.py)
    outcome = await simulate_eligibility(session, draft, base, as_of, principal.covers_region,
                                         list_limit=body.list_limit)
    per_region = {
        region: {"enterprises": e, "draft": d, "current": c} for region, (e, d, c) in outcome.regions.items()
    }
    totals = {
        "enterprises": sum(s["enterprises"] for s in per_region.values()),
        "draft": sum(s["draft"] for s in per_region.values()),
        "current": sum(s["current"] for s in per_region.values()),
    }
    if base is None and not per_region:
        raise Problem(422, "没有可对照的现行规则集,也没有草案覆盖的企业")
    return {
        "as_of": as_of.isoformat(),
        "draft": {"id": str(draft.id), "version": draft.version, "tier": str(draft.tier),
                  "jurisdiction": draft.jurisdiction},
        "baseline": None if base is None else {"id": str(base.id), "version": base.version},
        "totals": {**totals, "gained": outcome.gained, "lost": outcome.lost},
        "regions": [{"region_code": k, **v, "delta": v["draft"] - v["current"]} for k, v in sorted(per_region.items())],
        "gainers": outcome.gainers,
        "losers": outcome.losers,
    }
