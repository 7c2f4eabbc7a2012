"""Reads over the stored indicator reports shared by the re-evaluation job and the policy simulation."""

from __future__ import annotations

# Active enterprises with their latest report (its year and indicators as JSON text), by a LATERAL index lookup
# per enterprise (a DISTINCT ON over the join merge-joined ``indicator_reports`` from its first row every time).
# Callers append their own ``AND …`` / ``ORDER BY`` / ``LIMIT``.
LATEST_REPORTS = """
    SELECT e.uscc, e.region_code, e.founded_on, e.industry_code, e.is_manufacturing,
           r.year, r.indicators::text AS indicators
    FROM evaluation.enterprises e
    CROSS JOIN LATERAL (
        SELECT i.year, i.indicators FROM evaluation.indicator_reports i
        WHERE i.uscc = e.uscc ORDER BY i.year DESC LIMIT 1
    ) r
    WHERE e.status <> 'deregistered'
"""
