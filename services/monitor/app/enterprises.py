"""The enterprise view: titles, evaluations with their gaps, applications, entitlements, commissioner, events."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.monitor.db import archive
from services.monitor.db import reporting as q
from services.monitor.domain.reports import yuan
from shared.tiers import tier_label, tier_name


def _money(rows: list[dict[str, Any]], *keys: str) -> list[dict[str, Any]]:
    return [{**r, **{k: yuan(r[k]) for k in keys if k in r}} for r in rows]


async def enterprise_view(session: AsyncSession, uscc: str) -> dict[str, Any] | None:
    """Everything the monitor knows of one enterprise (None when it knows nothing)."""
    facts = await q.enterprise(session, uscc)
    if facts is None:
        return None
    titles = await q.enterprise_rows(session, "recognitions", uscc, "valid_from DESC NULLS LAST")
    for t in titles:
        t["label"] = tier_label(t["tier"], t["level"])
    evaluations = await q.enterprise_rows(session, "evaluations", uscc, "tier")
    for e in evaluations:
        e["tier_name"] = tier_name(e["tier"])
        e["yuan_gap"] = None if e["yuan_gap"] is None else yuan(e["yuan_gap"])
        e["score"] = None if e["score"] is None else yuan(e["score"])
    assignments = await q.enterprise_rows(session, "assignments", uscc, "uscc")
    events = await archive.page(session, after=0, limit=500, territory=None, subject=uscc)
    return {
        **facts,
        "titles": titles,
        "evaluations": evaluations,
        "applications": await q.enterprise_rows(session, "applications", uscc, "batch_year DESC, application_id"),
        "entitlements": _money(await q.enterprise_rows(session, "entitlements", uscc, "year DESC, entitlement_id"),
                               "amount", "paid_amount", "recovered_amount"),
        "commissioner": assignments[0] if assignments else None,
        "events": events,
    }
