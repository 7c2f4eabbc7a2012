"""The 企业码 app's hot reads of evaluation, without a session (``shared.db_reads``): an enterprise's latest
evaluations and its titles, their JSON written by PostgreSQL (the explanations rebuilt from their templates here).

Visibility is ``app.access.can_see``'s: the enterprise user itself, an official's territory (region tree codes),
the commissioner currently assigned, the admin everything; else no row (404)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import orjson

from services.evaluation.db.explanations import explanation_text, unknown_templates
from shared.db_reads import ALL, COMMISSIONER, ENTERPRISE, TERRITORY, ReadPool, Scope, ScopedRead, iso_utc

_ASSIGNED = ("EXISTS (SELECT 1 FROM evaluation.commissioner_assignments a "
             "WHERE a.uscc = {uscc} AND a.commissioner_id = {{arg}})")


def _visible(region: str, uscc: str) -> dict[str, str]:
    """``can_see`` as SQL: ``region`` the enterprise's region code, ``uscc`` its USCC (SQL expressions)."""
    return {
        ALL: "true",
        ENTERPRISE: f"{uscc} = {{arg}}",
        COMMISSIONER: _ASSIGNED.format(uscc=uscc),
        TERRITORY: f"{region} = ANY({{arg}}::text[])",
    }


# EvaluationOut without its explanation, per (tier, rule set) the newest evaluation, per tier only those of its
# newest run (evaluating.latest_of_enterprise); $1 uscc, $2 year or NULL. An enterprise with none: one row of NULLs.
_LATEST = ScopedRead(
    f"""
SELECT v.id IS NOT NULL, json_build_object(
  'id', v.id, 'uscc', v.uscc, 'region_code', v.region_code, 'year', v.year, 'ruleset_id', v.ruleset_id,
  'ruleset_version', v.ruleset_version, 'tier', v.tier, 'level', v.level, 'as_of', v.as_of, 'eligible', v.eligible,
  'score', v.score::text, 'created_at', {iso_utc("v.created_at", "+00:00")})::text,
  v.explanation_template, v.explanation_values, v.explanation::text
FROM evaluation.enterprises e
LEFT JOIN LATERAL (
  SELECT l.* FROM (
    SELECT d.*, max(d.created_at) OVER (PARTITION BY d.tier) AS newest FROM (
      SELECT DISTINCT ON (x.tier, x.ruleset_id) x.* FROM evaluation.evaluations x
      WHERE x.uscc = e.uscc AND ($2::int IS NULL OR x.year = $2::int)
      ORDER BY x.tier, x.ruleset_id, x.created_at DESC) d) l
  WHERE l.created_at = l.newest) v ON true
WHERE e.uscc = $1 AND {{scope}}
ORDER BY v.tier, v.ruleset_id""",
    _visible("e.region_code", "e.uscc"),
)


async def latest_evaluations_json(pool: ReadPool, scope: Scope, uscc: str, year: int | None) -> str | None:
    """EnterpriseEvaluations' JSON, or None when the caller may not see the enterprise (or it is unknown)."""
    rows = await _LATEST.fetch(pool, scope, uscc, year)
    if not rows:
        return None
    rows = [r for r in rows if r[0]]
    templates: dict[str, Any] = {}
    if missing := unknown_templates({r[2] for r in rows if r[2] is not None and r[3] is not None}):
        for tid, text in await pool.fetch(
            "SELECT id, template::text FROM evaluation.explanation_templates WHERE id = ANY($1::text[])", list(missing)
        ):
            templates[tid] = json.loads(text)
    items = []
    for _, head, tid, values, full in rows:
        explanation = explanation_text(tid, values, templates.get(tid)) if values is not None else (full or "{}")
        items.append(f'{head[:-1]}, "explanation" : {explanation}}}')
    return (f'{{"uscc":{orjson.dumps(uscc).decode()},"year":{"null" if year is None else int(year)},'
            f'"items":[{",".join(items)}]}}')


# EnterpriseRecognitions (recognition.of_enterprise): the enterprise's region from the read model, else from its
# latest title; current / upcoming / past as of $2 (the decision date), latest validity first. $1 uscc.
_RECOGNITION = """json_build_object(
  'id', r.id, 'uscc', r.uscc, 'region_code', r.region_code, 'tier', r.tier, 'level', r.level,
  'ruleset_id', r.ruleset_id, 'batch_year', r.batch_year, 'application_id', r.application_id,
  'announced_on', r.announced_on, 'valid_from', r.valid_from, 'valid_to', r.valid_to, 'status', r.status,
  'renewal', r.renewal, 'revoked_on', r.revoked_on, 'revoke_ground', r.revoke_ground,
  'revoke_evidence', r.revoke_evidence, 'ban_until', r.ban_until, 'expired_on', r.expired_on)"""


def _titles(where: str) -> str:
    return (f"coalesce((SELECT json_agg({_RECOGNITION} ORDER BY r.valid_from DESC, r.id) "
            f"FROM evaluation.recognitions r WHERE r.uscc = $1 AND {where}), '[]'::json)")


_CURRENT = "r.status = 'active' AND r.valid_from <= $2::date AND $2::date <= r.valid_to"
_UPCOMING = "r.status = 'active' AND r.valid_from > $2::date"
_TITLES = ScopedRead(
    f"""
SELECT json_build_object(
  'uscc', $1::text,
  'current', {_titles(_CURRENT)},
  'upcoming', {_titles(_UPCOMING)},
  'past', {_titles(f"NOT ({_CURRENT}) AND NOT ({_UPCOMING})")},
  'banned_until', (SELECT b.banned_until FROM evaluation.application_bans b
                   WHERE b.uscc = $1 AND b.banned_until >= $2::date AND b.banned_from <= $2::date
                   ORDER BY b.banned_until DESC LIMIT 1))::text
FROM (SELECT coalesce(
        (SELECT e.region_code FROM evaluation.enterprises e WHERE e.uscc = $1),
        (SELECT r.region_code FROM evaluation.recognitions r WHERE r.uscc = $1 ORDER BY r.valid_from DESC LIMIT 1)
      ) AS region_code) w
WHERE w.region_code IS NOT NULL AND {{scope}}""",
    _visible("w.region_code", "$1"),
)


async def titles_json(pool: ReadPool, scope: Scope, uscc: str, today: date) -> str | None:
    """EnterpriseRecognitions' JSON, or None when the caller may not see the enterprise (or it is unknown)."""
    row = await _TITLES.fetchrow(pool, scope, uscc, today)
    return None if row is None else str(row[0])
