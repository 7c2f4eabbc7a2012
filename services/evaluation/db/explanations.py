"""Normalised explanations: the static part once per rule-set version (``explanation_templates``), the varying
part per evaluation (``evaluations.explanation_values``); the full explanation rebuilt on read."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.evaluation.db.models import Evaluation, ExplanationTemplate

# template id → static part; templates are content-addressed (SHA-256) and never change, so this is safe
# to keep for the life of the process whatever the database
_TEMPLATES: dict[str, dict[str, Any]] = {}


def template_of(ruleset: Any) -> tuple[str, dict[str, Any]]:
    """(id, static part) of ``ruleset``'s explanations, remembered for reads."""
    from services.evaluation.domain.engine import template

    tid, tpl = template(ruleset)
    _TEMPLATES.setdefault(tid, tpl)
    return tid, tpl


async def store_templates(session: AsyncSession, rulesets: list[Any]) -> dict[str, str]:
    """Store the templates of ``rulesets`` (idempotent); ruleset id → template id. Only those the database does not
    hold yet are sent (a template is several KB of JSON, and every evaluation names its rule sets' templates)."""
    out: dict[str, str] = {}
    rows: dict[str, dict[str, Any]] = {}
    for rs in rulesets:
        tid, tpl = template_of(rs)
        out[str(rs.id)] = tid
        rows[tid] = {"id": tid, "ruleset_id": str(rs.id), "ruleset_version": int(rs.version), "template": tpl}
    if rows:
        held = set((await session.execute(
            select(ExplanationTemplate.id).where(ExplanationTemplate.id.in_(list(rows))))).scalars())
        missing = [row for tid, row in rows.items() if tid not in held]
        if missing:
            await session.execute(
                insert(ExplanationTemplate).values(missing).on_conflict_do_nothing(index_elements=["id"]))
    return out


def explanation_text(template_id: str, values: str, template: dict[str, Any] | None = None) -> str:
    """The full explanation's JSON text from its template (remembered, else ``template`` as loaded by the caller)
    and the compact varying part."""
    from services.evaluation.domain.explanation import decode

    tpl = _TEMPLATES.get(template_id)
    if tpl is None:
        if template is None:
            raise LookupError(f"explanation template {template_id} missing")
        tpl = _TEMPLATES.setdefault(template_id, template)
    return decode(tpl, values, template_id)


def unknown_templates(template_ids: Iterable[str]) -> set[str]:
    """The ids among ``template_ids`` whose template this process has not remembered yet."""
    return {t for t in template_ids if t not in _TEMPLATES}


def full_explanation_text(row: Evaluation) -> str:
    """The full explanation's JSON text of a normalised row."""
    tid = row.explanation_template
    assert tid is not None and row.explanation_values is not None
    if tid in _TEMPLATES:
        return explanation_text(tid, row.explanation_values)
    loaded = row.template  # loaded with the row (selectin)
    return explanation_text(tid, row.explanation_values, loaded.template if loaded is not None else None)


def full_explanation(row: Evaluation) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(full_explanation_text(row))
    return data
