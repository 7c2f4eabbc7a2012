"""The 企业码 app's hot read of finance, without a session (``shared.db_reads``): an enterprise's entitlements with
their disbursements, the JSON written by PostgreSQL.

Visible as ``app.entitlements.visible``: the enterprise user its own, an official those funded within its
territory (``jurisdiction``), the admin all. An official for whom none of the enterprise's entitlements lies in
its territory (``region_code``: finance keeps no enterprise register) gets no row (404), like another enterprise."""

from __future__ import annotations

from shared.db_reads import ALL, ENTERPRISE, TERRITORY, ReadPool, Scope, ScopedRead, iso_utc

_DISBURSEMENT = f"""CASE WHEN d.id IS NULL THEN NULL ELSE json_build_object(
  'id', d.id, 'entitlement_id', d.entitlement_id, 'uscc', d.uscc, 'jurisdiction', d.jurisdiction,
  'amount', d.amount::text, 'state', d.state, 'attempts', d.attempts, 'idempotency_key', d.idempotency_key,
  'last_error', d.last_error, 'gateway_payment_id', d.gateway_payment_id, 'paid_at', {iso_utc("d.paid_at")}) END"""

# list[EntitlementOut] in the order of creation; $1 uscc. One row when the caller may see the enterprise.
_ENTITLEMENTS = ScopedRead(
    f"""
SELECT coalesce(json_agg(json_build_object(
  'id', e.id, 'uscc', e.uscc, 'region_code', e.region_code, 'jurisdiction', e.jurisdiction,
  'policy_id', e.policy_id, 'policy_name', e.policy_name, 'kind', e.kind, 'fund', e.fund, 'subject', e.subject,
  'year', e.year, 'amount', e.amount::text, 'status', e.status, 'explanation', e.explanation, 'source', e.source,
  'created_by', e.created_by, 'decided_by', e.decided_by, 'decided_at', {iso_utc("e.decided_at")},
  'reason', e.reason, 'disbursement', {_DISBURSEMENT}) ORDER BY e.created_at, e.id) FILTER (WHERE {{visible}}),
  '[]'::json)::text
FROM finance.entitlements e LEFT JOIN finance.disbursements d ON d.entitlement_id = e.id
WHERE e.uscc = $1
HAVING {{known}}""",
    {
        ALL: {"visible": "true", "known": "true"},
        ENTERPRISE: {"visible": "true", "known": "$1 = {arg}"},
        TERRITORY: {"visible": "e.jurisdiction = ANY({arg}::text[])",
                    "known": "coalesce(bool_or(e.region_code = ANY({arg}::text[])), false)"},
    },
)


async def entitlements_json(pool: ReadPool, scope: Scope, uscc: str) -> str | None:
    """list[EntitlementOut]'s JSON, or None when the caller may not see the enterprise."""
    row = await _ENTITLEMENTS.fetchrow(pool, scope, uscc)
    return None if row is None else str(row[0])
