"""Policy simulation (政策模拟) as a use case: a draft rule set, or changed parameters of a stored one, against
the rule set in force, over the caller's territory (``app/simulation.py`` does the streamed, off-loop
eligibility pass). Nothing is stored or published."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import date
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from services.evaluation.app.evaluating import select_in_force
from services.evaluation.app.simulation import simulate_eligibility
from services.evaluation.db.ruleset_store import latest_rulesets
from shared.problems import Problem, field_error


def set_path(doc: Any, path: str, value: Any) -> None:
    """Set ``value`` at a dotted ``path`` (list elements by index or by their ``code``); KeyError if absent."""
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


def validate_draft(doc: dict[str, Any]) -> Any:
    """The draft as a compiled rule set; 422 naming the field otherwise."""
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


def _parse_yaml(draft_yaml: str) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(draft_yaml)
    except yaml.YAMLError as exc:
        raise field_error("draft_yaml", f"YAML 格式错误: {exc}") from exc
    if not isinstance(loaded, dict):
        raise field_error("draft_yaml", "规则集草案须为映射 (mapping)")
    return loaded


def _draft_document(draft: dict[str, Any] | None, base: Any, changes: list[tuple[str, Any]]) -> dict[str, Any]:
    if draft is not None:
        return draft
    if base is None:
        raise field_error("draft", "须提供规则集草案,或对照规则集及参数修改 (draft or base_ruleset + changes)")
    if not changes:
        raise field_error("changes", "未提供任何参数修改")
    doc: dict[str, Any] = copy.deepcopy(json.loads(json.dumps(base.model_dump(mode="json"))))
    for path, value in changes:
        try:
            set_path(doc, path, value)
        except KeyError as exc:
            raise field_error("changes", f"参数路径不存在: {path}") from exc
    return doc


async def simulate_policy(
    session: AsyncSession,
    *,
    region: str,
    covers: Callable[[str], bool],
    as_of: date,
    draft: dict[str, Any] | None,
    draft_yaml: str | None,
    base_ruleset: str | None,
    changes: list[tuple[str, Any]],
    list_limit: int,
) -> dict[str, Any]:
    """Eligible enterprises per region under the draft and under the baseline, gainers and losers."""
    stored = [rs for _, rs in await latest_rulesets(session)]
    by_id = {str(rs.id): rs for rs in stored}
    if draft_yaml is not None:
        draft = _parse_yaml(draft_yaml)
    base = None
    if base_ruleset:
        base = by_id.get(base_ruleset)
        if base is None:
            raise field_error("base_ruleset", f"规则集 {base_ruleset} 不存在")
    draft_rs = validate_draft(_draft_document(draft, base, changes))
    if base is None:
        base = by_id.get(str(draft_rs.id))
    if base is None:
        where = draft_rs.jurisdiction if draft_rs.jurisdiction != "national" else region
        same_tier = select_in_force(stored, as_of, where, str(draft_rs.tier))
        base = same_tier[0] if same_tier else None

    # eligibility only, streamed and evaluated off the event loop (services/evaluation/app/simulation.py)
    outcome = await simulate_eligibility(session, draft_rs, base, as_of, covers, list_limit=list_limit)
    per_region = {
        code: {"enterprises": e, "draft": d, "current": c} for code, (e, d, c) in outcome.regions.items()
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
        "draft": {"id": str(draft_rs.id), "version": draft_rs.version, "tier": str(draft_rs.tier),
                  "jurisdiction": draft_rs.jurisdiction},
        "baseline": None if base is None else {"id": str(base.id), "version": base.version},
        "totals": {**totals, "gained": outcome.gained, "lost": outcome.lost},
        "regions": [{"region_code": k, **v, "delta": v["draft"] - v["current"]} for k, v in sorted(per_region.items())],
        "gainers": outcome.gainers,
        "losers": outcome.losers,
    }
