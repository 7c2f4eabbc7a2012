"""Demo data: the seeded policies (seeds/policies.yaml) and budgets for the demo jurisdictions (``load_demo``);
after evaluation's demo history, some of the entitlements its recognitions created approved by an official of
the policy's jurisdiction (maker-checker: never the creator) and paid by the disbursement worker through the
stand-in gateway (``load_payments``). Idempotent."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.finance.app.budgets import allocate_seeded
from services.finance.app.policies import emit_policy_published
from services.finance.db import policies
from services.finance.db.models import BudgetRow, DisbursementRow, EntitlementRow, PolicyRow
from shared.auth import Principal, Role
from shared.db import create_engine, make_session_factory
from shared.demo import demo_events
from shared.settings import Settings

# 330100 is the demo city of the (unnamed) city programme; 331100 丽水 with its counties.
LISHUI_COUNTIES = ("331102", "331121", "331122", "331123", "331124", "331125", "331126", "331127", "331181")
DEMO_JURISDICTIONS = ("330000", "330100", "330109", "330110", "331100", *LISHUI_COUNTIES)
FUNDS: dict[str, Decimal] = {
    "sme_development": Decimal("50000000.00"),
    "digital_transformation": Decimal("20000000.00"),
    "talent": Decimal("5000000.00"),
}


FIRST_YEAR = 2022


def demo_budgets(size: int) -> list[tuple[str, str, int, Decimal]]:
    """(jurisdiction, fund, year, total): larger demos get proportionally larger budgets."""
    scale = Decimal(max(1, size // 100) if size > 100 else 1)
    this_year = date.today().year
    out = []
    for j in DEMO_JURISDICTIONS:
        level_factor = Decimal(4) if j.endswith("0000") else Decimal(2) if j.endswith("00") else Decimal(1)
        for fund, base in FUNDS.items():
            for year in range(FIRST_YEAR, this_year + 1):  # the demo history's titles date from 2022
                out.append((j, fund, year, base * level_factor * scale))
    return out


async def _announce(session: AsyncSession, policy_id: str) -> None:
    """A newly seeded policy is published like one published through the API."""
    row = await session.get(PolicyRow, policy_id)
    assert row is not None
    await emit_policy_published(session, row)


async def load_demo(settings: Settings, size: int) -> None:
    """Seed policies (upsert by id) and budgets (only created when missing, so reruns change nothing)."""
    engine = create_engine(settings.database_url, pool_size=2)
    try:
        sf = make_session_factory(engine)
        async with sf() as session, session.begin():
            for data in policies.load_seed_file():
                if await policies.upsert_policy(session, data):
                    await _announce(session, data["id"])
            for j, fund, year, total in demo_budgets(size):
                exists = (
                    await session.execute(
                        select(BudgetRow.id).where(
                            BudgetRow.jurisdiction == j, BudgetRow.fund == fund, BudgetRow.year == year
                        )
                    )
                ).first()
                if exists is None:
                    await allocate_seeded(session, j, fund, year, total, actor="demo-seed")
    finally:
        await engine.dispose()


def _approver(jurisdiction: str) -> Principal:
    """The checker of the jurisdiction (shared/demo.py prints the tokens of the officials ``…-b``)."""
    role = Role.PROVINCE if jurisdiction.endswith("0000") else Role.CITY if jurisdiction.endswith("00") else Role.COUNTY
    prefix = {Role.PROVINCE: "prov", Role.CITY: "city", Role.COUNTY: "county"}[role]
    return Principal(sub=f"{prefix}-{jurisdiction}-b", role=role, region=jurisdiction)


async def _settled_entitlements(sf: async_sessionmaker[AsyncSession], wait_seconds: float) -> int:
    """The entitlements evaluation's demo recognitions create arrive through its events: wait until their
    number stops growing (2 s unchanged, looked at every 0.2 s), at most ``wait_seconds``."""
    deadline = time.monotonic() + wait_seconds
    last, stable = -1, 0
    while time.monotonic() < deadline:
        async with sf() as session:
            n = (await session.execute(select(func.count()).select_from(EntitlementRow))).scalar_one()
        stable = stable + 1 if n == last and n > 0 else 0
        if stable >= 10:
            break
        last = n
        await asyncio.sleep(0.2)
    return last


async def load_payments(settings: Settings, size: int, *, wait_seconds: float = 60.0) -> None:
    """Approve the pending entitlements of the years before this one (the running service's disbursement worker
    pays them through the gateway); this year's stay pending for the officials to try. Idempotent: only
    pending ones are approved."""
    from services.finance.app.entitlements import approve
    from services.finance.app.payments import CONFIG, GatewayClient, process_claimed
    from services.finance.db.disbursements import claim_due

    engine = create_engine(settings.database_url, pool_size=4)
    try:
        sf = make_session_factory(engine)
        await _settled_entitlements(sf, wait_seconds)
        async with sf() as session:
            ids = (await session.execute(
                select(EntitlementRow.id)
                .where(EntitlementRow.status == "pending", EntitlementRow.year < date.today().year)
                .order_by(EntitlementRow.year, EntitlementRow.uscc, EntitlementRow.policy_id)
            )).scalars().all()
        later = datetime.now(UTC) + timedelta(minutes=10)
        approved: list[uuid.UUID] = []
        with demo_events("finance-payments"):
            for eid in ids:
                async with sf() as session, session.begin():
                    row = await session.get(EntitlementRow, eid, with_for_update=True)
                    if row is not None and row.status == "pending":
                        disb = await approve(session, _approver(row.jurisdiction), row, "演示数据: 复核通过")
                        if settings.payment_gateway_url:
                            disb.next_attempt_at = later  # paid below, in this process (its events the demo's)
                        approved.append(disb.id)
            if not settings.payment_gateway_url:
                return  # no gateway here: the service's disbursement worker pays them
            gateway = GatewayClient(settings.payment_gateway_url, CONFIG.timeout)
            claimed = []
            for did in approved:  # each made due and claimed here in one transaction: the worker never sees it
                async with sf() as session, session.begin():
                    await session.execute(update(DisbursementRow).where(DisbursementRow.id == did)
                                          .values(next_attempt_at=datetime.now(UTC) - timedelta(minutes=10)))
                    claimed.append(await claim_due(session, CONFIG.lease_seconds))
            # the claimed instructions are independent: sent to the gateway a few at a time
            slots = asyncio.Semaphore(4)

            async def pay(d: DisbursementRow) -> None:
                async with slots:
                    await process_claimed(sf, gateway, d, CONFIG)

            await asyncio.gather(*(pay(d) for d in claimed if d is not None))
    finally:
        await engine.dispose()
