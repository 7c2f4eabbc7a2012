"""Demo data: the seeded policies (seeds/policies.yaml) and budgets for the demo jurisdictions. Idempotent."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.finance.app.budgets import allocate_seeded
from services.finance.app.policies import emit_policy_published
from services.finance.db import policies
from services.finance.db.models import BudgetRow, PolicyRow
from shared.db import create_engine, make_session_factory
from shared.settings import Settings

# 330100 is the demo city of the (unnamed) city programme; 331100 丽水 with its counties.
LISHUI_COUNTIES = ("331102", "331121", "331122", "331123", "331124", "331125", "331126", "331127", "331181")
DEMO_JURISDICTIONS = ("330000", "330100", "330109", "330110", "331100", *LISHUI_COUNTIES)
FUNDS: dict[str, Decimal] = {
    "sme_development": Decimal("50000000.00"),
    "digital_transformation": Decimal("20000000.00"),
    "talent": Decimal("5000000.00"),
}


def demo_budgets(size: int) -> list[tuple[str, str, int, Decimal]]:
    """(jurisdiction, fund, year, total): larger demos get proportionally larger budgets."""
    scale = Decimal(max(1, size // 100) if size > 100 else 1)
    this_year = date.today().year
    out = []
    for j in DEMO_JURISDICTIONS:
        level_factor = Decimal(4) if j.endswith("0000") else Decimal(2) if j.endswith("00") else Decimal(1)
        for fund, base in FUNDS.items():
            for year in (this_year - 1, this_year):
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
