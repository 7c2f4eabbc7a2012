"""Queries of the reporting read models, grouped by the enterprise's region code within a region (the codes the
GB/T 2260 tree puts there, never a LIKE pattern; the app rolls the codes up to the child regions of the page)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.regions import region_tree


def territory(region: str) -> list[str]:
    """Every code within ``region`` by the region tree (retired codes included; an unknown code: none)."""
    return sorted(region_tree().covered(region))


async def _rows(session: AsyncSession, sql: str, **params: Any) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in await session.execute(text(sql), params)]


async def recognitions(session: AsyncSession, region: str, year: int, as_of: date) -> list[dict[str, Any]]:
    return await _rows(session, """
        SELECT region_code, tier, level,
               count(*) FILTER (WHERE valid_from <= :as_of AND (valid_to IS NULL OR valid_to >= :as_of)
                                AND (status = 'valid' OR ended_on > :as_of)) AS current,
               count(*) FILTER (WHERE batch_year = :year) AS new,
               count(*) FILTER (WHERE status = 'expired') AS expired,
               count(*) FILTER (WHERE status = 'revoked') AS revoked
        FROM monitor.recognitions WHERE region_code = ANY(CAST(:codes AS text[]))
        GROUP BY region_code, tier, level""", codes=territory(region), year=year, as_of=as_of)


async def pool(session: AsyncSession, region: str, year: int) -> list[dict[str, Any]]:
    return await _rows(session, """
        SELECT region_code, track AS tier, count(DISTINCT uscc) AS members FROM monitor.pool_members
        WHERE active AND year = :year AND region_code = ANY(CAST(:codes AS text[])) GROUP BY region_code, track""",
        codes=territory(region), year=year)


async def applications(session: AsyncSession, region: str, year: int) -> list[dict[str, Any]]:
    return await _rows(session, """
        SELECT region_code, tier, stage, count(*) AS n FROM monitor.applications
        WHERE batch_year = :year AND region_code = ANY(CAST(:codes AS text[])) GROUP BY region_code, tier, stage""",
        codes=territory(region), year=year)


async def entitlements(session: AsyncSession, region: str, year: int) -> list[dict[str, Any]]:
    return await _rows(session, """
        SELECT region_code, jurisdiction, status, count(*) AS n, sum(amount) AS amount,
               sum(paid_amount) AS paid, sum(recovered_amount) AS recovered
        FROM monitor.entitlements WHERE year = :year AND region_code = ANY(CAST(:codes AS text[]))
        GROUP BY region_code, jurisdiction, status""", codes=territory(region), year=year)


async def budgets(session: AsyncSession, region: str, year: int) -> list[dict[str, Any]]:
    return await _rows(session, """
        SELECT jurisdiction, fund, amount FROM monitor.budgets
        WHERE year = :year AND jurisdiction = ANY(CAST(:codes AS text[]))""",
        codes=territory(region), year=year)


async def targets(session: AsyncSession, region: str, year: int) -> list[dict[str, Any]]:
    return await _rows(session, """
        SELECT region_code, track AS tier, measure, level, target FROM monitor.targets
        WHERE year = :year AND region_code = ANY(CAST(:codes AS text[]))""", codes=territory(region), year=year)


async def target_years(session: AsyncSession, region: str) -> list[int]:
    """The years with targets set within ``region``, oldest first."""
    return [int(r["year"]) for r in await _rows(session, """
        SELECT DISTINCT year FROM monitor.targets WHERE region_code = ANY(CAST(:codes AS text[])) ORDER BY year""",
        codes=territory(region))]


async def commissioners(session: AsyncSession, region: str) -> list[dict[str, Any]]:
    return await _rows(session, """
        SELECT commissioner_id, max(commissioner_name) AS name, count(*) AS enterprises FROM monitor.assignments
        WHERE region_code = ANY(CAST(:codes AS text[]))
        GROUP BY commissioner_id ORDER BY count(*) DESC, commissioner_id""",
        codes=territory(region))


async def notices(session: AsyncSession, region: str, year: int) -> list[dict[str, Any]]:
    """Notices sent in ``year`` to enterprises of ``region`` (or to its officials/commissioners), by region, kind,
    tier, recipient kind and commissioner."""
    return await _rows(session, """
        SELECT region_code, kind, max(kind_name) AS kind_name, tier, recipient_kind, commissioner_id,
               count(*) AS n, count(*) FILTER (WHERE channels > 0) AS sent_out
        FROM monitor.notices WHERE year = :year AND region_code = ANY(CAST(:codes AS text[]))
        GROUP BY region_code, kind, tier, recipient_kind, commissioner_id""", codes=territory(region), year=year)


async def candidates(session: AsyncSession, region: str, year: int, tier: str | None) -> list[dict[str, Any]]:
    """Pool members in ``year`` (entered that year or before, still in) whose latest evaluation for the pool's tier
    is not yet eligible, nearest first: fewest unmet conditions, smallest yuan gap, highest score."""
    return await _rows(session, """
        SELECT DISTINCT ON (p.region_code, p.track, p.uscc)
               p.region_code, p.track AS tier, p.uscc, e.name, v.unmet, v.yuan_gap, v.score, v.as_of
        FROM monitor.pool_members p
        JOIN monitor.evaluations v ON v.uscc = p.uscc AND v.tier = p.track AND NOT v.eligible
        LEFT JOIN monitor.enterprises e ON e.uscc = p.uscc
        WHERE p.active AND p.year <= :year AND p.region_code = ANY(CAST(:codes AS text[]))
              AND (CAST(:tier AS text) IS NULL OR p.track = :tier)
        ORDER BY p.region_code, p.track, p.uscc""", codes=territory(region), year=year, tier=tier)


async def enterprise(session: AsyncSession, uscc: str) -> dict[str, Any] | None:
    rows = await _rows(session, "SELECT uscc, name, region_code, status FROM monitor.enterprises WHERE uscc = :u",
                       u=uscc)
    return rows[0] if rows else None


async def enterprise_rows(session: AsyncSession, table: str, uscc: str, order: str) -> list[dict[str, Any]]:
    assert table in {"recognitions", "evaluations", "entitlements", "assignments", "applications", "pool_members"}
    return await _rows(session, f"SELECT * FROM monitor.{table} WHERE uscc = :u ORDER BY {order}", u=uscc)
