"""Daily reconciliation: the ledger's payments of a day against the gateway's statement, recorded and audited."""

from __future__ import annotations

import uuid
from datetime import date

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from services.finance.app.payments import GatewayClient, reconcile
from services.finance.db import recoveries as repo
from services.finance.db.models import ReconciliationRow, backbone
from shared.audit import record_audit
from shared.auth import Principal
from shared.problems import Problem


async def run(session: AsyncSession, principal: Principal, gateway: GatewayClient, on: date) -> ReconciliationRow:
    """One transaction (owned here: the gateway call happens inside it)."""
    try:
        async with session.begin():
            matched, mismatches = await reconcile(session, gateway, on, principal.covers_region)
            row = ReconciliationRow(
                id=uuid.uuid4(),
                on_date=on,
                jurisdiction=principal.region,
                created_by=principal.sub,
                matched=matched,
                mismatches=mismatches,
            )
            session.add(row)
            await record_audit(
                session,
                backbone,
                principal,
                "reconciliation.run",
                "reconciliation",
                str(row.id),
                after={"matched": matched, "mismatches": len(mismatches)},
            )
    except httpx.HTTPError as exc:
        raise Problem(503, f"无法获取网关对账单 (gateway statement unavailable): {exc!r}") from exc
    return row


async def listing(session: AsyncSession, principal: Principal) -> list[ReconciliationRow]:
    return [r for r in await repo.reconciliations(session) if principal.covers_region(r.jurisdiction)]
