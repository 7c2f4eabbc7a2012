"""The deciding rule set of an application (tier + title level → rule set, per province; issue 15): the
mapping files are read here (``ZJTX_EVAL_TITLE_RULES_DIR``, default ``rulesets/title_rules``) and passed to
``domain/title_rules.py``."""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.ext.asyncio import AsyncSession

from services.evaluation.config import get_config
from services.evaluation.db.ruleset_store import latest_rulesets
from services.evaluation.domain.title_rules import TitleRules, deciding_ruleset


@lru_cache(maxsize=8)
def load_title_rules(directory: Path) -> dict[str, TitleRules]:
    """Every ``<province>.yaml`` in ``directory``, by province code."""
    out: dict[str, TitleRules] = {}
    for path in sorted(directory.glob("*.yaml")):
        rules = TitleRules.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        if path.stem != rules.province:
            raise ValueError(f"{path}: file name must be the province code {rules.province}")
        out[rules.province] = rules
    return out


def title_rules() -> dict[str, TitleRules]:
    return load_title_rules(Path(get_config().title_rules_dir))


async def ruleset_for(session: AsyncSession, *, tier: str, level: str, region_code: str, on: date) -> Any | None:
    """The stored rule set (latest version) that decides this title for this region on ``on``, if any."""
    stored = [rs for _, rs in await latest_rulesets(session)]
    return deciding_ruleset(title_rules(), stored, tier=tier, level=level, region_code=region_code, on=on)
