"""Ledger view: the lines of a jurisdiction and the per-fund, per-account totals (debits equal credits)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.finance.db import ledger as repo
from services.finance.domain.money import ZERO, fmt, q


async def view(
    session: AsyncSession, jurisdiction: str, fund: str | None, year: int | None, limit: int
) -> dict[str, Any]:
    lines = await repo.lines(session, jurisdiction, fund, year, limit)
    per_fund: dict[str, dict[str, Any]] = {}
    for f, account, dr, cr in await repo.totals(session, jurisdiction, fund, year):
        entry = per_fund.setdefault(f, {"fund": f, "debit": ZERO, "credit": ZERO, "accounts": {}})
        entry["debit"] += dr
        entry["credit"] += cr
        entry["accounts"][account] = {"debit": fmt(dr), "credit": fmt(cr), "balance": fmt(dr - cr)}
    fund_totals = [
        {
            "fund": e["fund"],
            "debit": fmt(e["debit"]),
            "credit": fmt(e["credit"]),
            "balanced": q(Decimal(e["debit"])) == q(Decimal(e["credit"])),
            "accounts": e["accounts"],
        }
        for e in per_fund.values()
    ]
    return {
        "jurisdiction": jurisdiction,
        "fund": fund,
        "year": year,
        "lines": [
            {
                "id": ln.id,
                "txn_id": str(ln.txn_id),
                "movement": ln.movement,
                "fund": ln.fund,
                "year": ln.year,
                "account": ln.account,
                "debit": fmt(ln.debit),
                "credit": fmt(ln.credit),
                "entitlement_id": str(ln.entitlement_id) if ln.entitlement_id else None,
                "memo": ln.memo,
                "at": ln.at.isoformat(),
            }
            for ln in lines
        ],
        "totals": fund_totals,
        "balanced": all(t["balanced"] for t in fund_totals),
    }
