"""Helpers for finance tests."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.finance.app import payments
from services.finance.db import budgets as budget_repo
from services.finance.db import policies as policy_repo
from services.finance.db.models import BudgetRow, EntitlementRow, LedgerLine
from services.finance.events.handlers import on_tier_recognised, on_tier_revoked
from shared.events.envelope import CloudEvent

_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CITY_OFFICIAL = ("city_official", "330100")
FAST = payments.WorkerConfig(timeout=0.5, lease_seconds=0.3, backoff_base=0.05, backoff_max=0.2, max_attempts=4)


def new_uscc(region: str = "330110") -> str:
    return "91" + region + "".join(random.choice(_CHARS) for _ in range(10))


def recognised(
    uscc: str,
    region: str,
    tier: str,
    level: str | None,
    year: int,
    *,
    recognition_id: str | None = None,
    renewal: bool = False,
    migrated_in: bool = False,
    moved_in_on: date | None = None,
    arrived_on: date | None = None,
    event_id: str | None = None,
) -> CloudEvent:
    extra = {"moved_in_on": moved_in_on.isoformat()} if moved_in_on else {}
    return CloudEvent(
        id=event_id or str(uuid.uuid4()),
        source="/zjtx/evaluation",
        type="zjtx.evaluation.tier.recognised.v1",
        subject=uscc,
        regioncode=region,
        **({"time": datetime.combine(arrived_on, time(9), tzinfo=UTC)} if arrived_on else {}),
        data=extra
        | {
            "recognition_id": recognition_id or f"R-{uuid.uuid4().hex[:8]}",
            "uscc": uscc,
            "region_code": region,
            "tier": tier,
            "level": level,
            "ruleset_id": "MIIT-2022-63",
            "batch_year": year,
            "announced_on": date(year, 9, 1).isoformat(),
            "valid_from": date(year, 9, 1).isoformat(),
            "valid_to": date(year + 3, 8, 31).isoformat(),
            "renewal": renewal,
            "migrated_in": migrated_in,
        },
    )


def revoked(uscc: str, region: str, recognition_id: str, tier: str = "srdi", level: str = "province") -> CloudEvent:
    return CloudEvent(
        id=str(uuid.uuid4()),
        source="/zjtx/evaluation",
        type="zjtx.evaluation.tier.revoked.v1",
        subject=uscc,
        regioncode=region,
        data={
            "recognition_id": recognition_id,
            "uscc": uscc,
            "region_code": region,
            "tier": tier,
            "level": level,
            "ground": "data_fraud",
            "revoked_on": "2026-05-01",
            "ban_until": "2029-05-01",
        },
    )


async def seed(sf: async_sessionmaker[AsyncSession], budgets: dict[tuple[str, str, int], str] | None = None) -> None:
    from decimal import Decimal

    async with sf() as s, s.begin():
        for data in policy_repo.load_seed_file():
            await policy_repo.upsert_policy(s, data)
        for (j, fund, year), amount in (budgets or {}).items():
            await budget_repo.allocate(s, j, fund, year, Decimal(amount))


async def apply_recognised(sf: async_sessionmaker[AsyncSession], event: CloudEvent) -> None:
    async with sf() as s, s.begin():
        await on_tier_recognised(s, event)


async def apply_revoked(sf: async_sessionmaker[AsyncSession], event: CloudEvent) -> None:
    async with sf() as s, s.begin():
        await on_tier_revoked(s, event)


async def entitlements_of(sf: async_sessionmaker[AsyncSession], uscc: str) -> list[EntitlementRow]:
    async with sf() as s:
        return list(
            (
                await s.execute(
                    select(EntitlementRow)
                    .where(EntitlementRow.uscc == uscc)
                    .order_by(EntitlementRow.jurisdiction, EntitlementRow.year)
                )
            ).scalars()
        )


async def pay_lines(sf: async_sessionmaker[AsyncSession], **where: Any) -> int:
    async with sf() as s:
        stmt = select(func.count()).select_from(LedgerLine).where(LedgerLine.movement == "pay")
        for k, v in where.items():
            stmt = stmt.where(getattr(LedgerLine, k) == v)
        return int((await s.execute(stmt)).scalar_one())


async def budget(sf: async_sessionmaker[AsyncSession], j: str, fund: str, year: int) -> BudgetRow:
    async with sf() as s:
        return (
            await s.execute(
                select(BudgetRow).where(BudgetRow.jurisdiction == j, BudgetRow.fund == fund, BudgetRow.year == year)
            )
        ).scalar_one()


async def assert_ledger_consistent(sf: async_sessionmaker[AsyncSession]) -> None:
    """DB ledger vs budget rows: balanced per scope and per movement, balances equal the budget columns."""
    from services.finance.domain import ledger as L

    async with sf() as s:
        lines = list((await s.execute(select(LedgerLine))).scalars())
        budgets = list((await s.execute(select(BudgetRow))).scalars())
    by_txn: dict[Any, list[LedgerLine]] = {}
    for ln in lines:
        by_txn.setdefault(ln.txn_id, []).append(ln)
    for txn in by_txn.values():
        assert len(txn) == 2 and sum(x.debit for x in txn) == sum(x.credit for x in txn)
    for b in budgets:
        scoped = [
            L.Line(x.account, x.debit, x.credit)
            for x in lines
            if (x.jurisdiction, x.fund, x.year) == (b.jurisdiction, b.fund, b.year)
        ]
        assert L.consistent(L.BudgetState(b.total, b.reserved, b.spent), scoped) == []


def money(headers: dict[str, str]) -> dict[str, str]:
    """Headers of a money POST: a fresh ``Idempotency-Key`` unless the test chose one."""
    return headers if "Idempotency-Key" in headers else headers | {"Idempotency-Key": str(uuid.uuid4())}


async def allocate_via_api(
    client: Any, body: dict[str, Any], maker: dict[str, str], checker: dict[str, str]
) -> dict[str, Any]:
    """Request a budget change as ``maker`` and approve it as ``checker`` (maker-checker); the approved change."""
    r = await client.post("/api/v1/budgets", json=body, headers=money(maker))
    assert r.status_code == 201 and r.json()["status"] == "pending", r.text
    r = await client.post(f"/api/v1/budgets/changes/{r.json()['id']}/approve", headers=money(checker))
    assert r.status_code == 200 and r.json()["status"] == "approved", r.text
    out: dict[str, Any] = r.json()
    return out
