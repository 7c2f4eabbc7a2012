"""Persistence helpers (no commits here: the route or the consumer owns the transaction)."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import and_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.finance.db.models import BudgetRow, LedgerLine, PolicyRow, backbone
from services.finance.domain.ledger import lines_for
from services.finance.domain.money import ZERO, q
from services.finance.domain.policy import Policy
from services.finance.events import contracts as ev
from shared.events.outbox import emit
from shared.problems import Problem

SEED_FILE = Path(__file__).parent / "seeds" / "policies.yaml"
SPEC_FIELDS = (
    "tiers",
    "stacking",
    "upgrade",
    "migrated_in",
    "recovery",
    "rate",
    "cap",
    "cap_scope",
    "threshold",
    "threshold_comparison",
    "base_label",
    "items",
    "amounts_configured",
    "note",
)


def _dec(v: Any) -> Decimal | None:
    return None if v is None else Decimal(str(v))


def policy_from_row(row: PolicyRow) -> Policy:
    s = row.spec or {}
    return Policy(
        id=row.id,
        name=row.name,
        jurisdiction=row.jurisdiction,
        fund=row.fund,
        kind=row.kind,  # type: ignore[arg-type]
        effective_from=row.effective_from,
        effective_to=row.effective_to,
        document=row.document,
        tiers={k: Decimal(str(v)) for k, v in (s.get("tiers") or {}).items()},
        stacking=s.get("stacking", "highest_only"),
        upgrade=s.get("upgrade", "pay_difference"),
        migrated_in=s.get("migrated_in", "as_new"),
        recovery=s.get("recovery", "full"),
        rate=_dec(s.get("rate")),
        cap=_dec(s.get("cap")),
        cap_scope=s.get("cap_scope", "project"),
        threshold=_dec(s.get("threshold")),
        threshold_comparison=s.get("threshold_comparison", "gt"),
        base_label=s.get("base_label", "核定金额"),
        items={k: Decimal(str(v)) for k, v in (s.get("items") or {}).items()},
        amounts_configured=bool(s.get("amounts_configured", False)),
        note=s.get("note", ""),
    )


async def emit_policy_published(session: AsyncSession, row: PolicyRow) -> None:
    """``policy.published`` for a policy row, in the caller's transaction (API publish and demo seeding)."""
    p = policy_from_row(row)
    await emit(
        session,
        backbone,
        ev.POLICY_PUBLISHED,
        row.jurisdiction,
        ev.PolicyPublished(
            policy_id=row.id,
            name=row.name,
            jurisdiction=row.jurisdiction,
            kind=row.kind,
            tiers=p.tiers_list(),
            effective_from=row.effective_from,
            effective_to=row.effective_to,
            summary=(row.document or row.name)[:500],
        ),
        regioncode=row.jurisdiction,
    )


def spec_of(data: dict[str, Any]) -> dict[str, Any]:
    """The JSON ``spec`` column from a policy dict (YAML seed or API input): money as 2-place strings."""
    spec: dict[str, Any] = {}
    for f in SPEC_FIELDS:
        if f not in data or data[f] is None:
            continue
        v = data[f]
        if f in ("tiers", "items"):
            v = {str(k): str(q(Decimal(str(a)))) for k, a in v.items()}
        elif f in ("cap", "threshold"):
            v = str(q(Decimal(str(v))))
        elif f == "rate":
            v = str(Decimal(str(v)))
        spec[f] = v
    return spec


def coverage(region_code: str) -> list[str]:
    """The jurisdictions whose policies cover an enterprise: county, city, province (deduplicated)."""
    out: list[str] = []
    for code in (region_code, region_code[:4] + "00", region_code[:2] + "0000"):
        if code not in out:
            out.append(code)
    return out


async def policies_covering(session: AsyncSession, region_code: str, kind: str, on: date) -> list[Policy]:
    rows = (
        await session.execute(
            select(PolicyRow)
            .where(
                PolicyRow.jurisdiction.in_(coverage(region_code)),
                PolicyRow.kind == kind,
                PolicyRow.status == "published",
            )
            .order_by(PolicyRow.jurisdiction, PolicyRow.id)
        )
    ).scalars()
    return [p for p in (policy_from_row(r) for r in rows) if p.in_force(on)]


async def lock(session: AsyncSession, key: str) -> None:
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": key})


# ------------------------------------------------------------------ ledger and budgets


async def post(
    session: AsyncSession,
    movement: str,
    jurisdiction: str,
    fund: str,
    year: int,
    amount: Decimal,
    *,
    entitlement_id: uuid.UUID | None = None,
    memo: str = "",
) -> bool:
    """Write the two lines of one movement. Per entitlement each movement exists once: returns False if
    it was already posted (nothing written)."""
    txn = uuid.uuid4()
    values = [
        {
            "txn_id": txn,
            "movement": movement,
            "jurisdiction": jurisdiction,
            "fund": fund,
            "year": year,
            "account": line.account,
            "debit": line.debit,
            "credit": line.credit,
            "entitlement_id": entitlement_id,
            "memo": memo,
        }
        for line in lines_for(movement, amount)
    ]
    stmt = insert(LedgerLine).values(values)
    if entitlement_id is not None:
        stmt = stmt.on_conflict_do_nothing(
            index_elements=["entitlement_id", "movement", "account"],
            index_where=text("entitlement_id IS NOT NULL"),
        )
    result = await session.execute(stmt.returning(LedgerLine.id))
    n = len(result.all())
    if n not in (0, 2):
        raise RuntimeError("账本分录不完整 (partial ledger movement)")
    return n == 2


def _budget_where(jurisdiction: str, fund: str, year: int) -> Any:
    return and_(BudgetRow.jurisdiction == jurisdiction, BudgetRow.fund == fund, BudgetRow.year == year)


async def allocate(
    session: AsyncSession, jurisdiction: str, fund: str, year: int, amount: Decimal, memo: str = ""
) -> BudgetRow:
    """Create the budget or raise its total by ``amount`` (posts an ``allocate`` movement)."""
    await session.execute(
        insert(BudgetRow)
        .values(id=uuid.uuid4(), jurisdiction=jurisdiction, fund=fund, year=year, total=ZERO)
        .on_conflict_do_nothing(index_elements=["jurisdiction", "fund", "year"])
    )
    if amount > ZERO:
        await session.execute(
            update(BudgetRow).where(_budget_where(jurisdiction, fund, year)).values(total=BudgetRow.total + q(amount))
        )
        await post(session, "allocate", jurisdiction, fund, year, amount, memo=memo or "预算下达")
    row = (await session.execute(select(BudgetRow).where(_budget_where(jurisdiction, fund, year)))).scalar_one()
    await session.refresh(row)
    return row


async def reserve(
    session: AsyncSession, jurisdiction: str, fund: str, year: int, amount: Decimal, entitlement_id: uuid.UUID
) -> None:
    """Conditional UPDATE: reserve only if the budget has the money (concurrency safe without a lock)."""
    amount = q(amount)
    got = (
        await session.execute(
            update(BudgetRow)
            .where(
                _budget_where(jurisdiction, fund, year),
                BudgetRow.total - BudgetRow.reserved - BudgetRow.spent >= amount,
            )
            .values(reserved=BudgetRow.reserved + amount)
            .returning(BudgetRow.id)
        )
    ).first()
    if got is None:
        row = (
            await session.execute(select(BudgetRow).where(_budget_where(jurisdiction, fund, year)))
        ).scalar_one_or_none()
        if row is None:
            raise Problem(
                409,
                f"{jurisdiction} 的 {fund} 资金 {year} 年度尚未下达预算 (no budget)",
                remaining="0.00",
            )
        remaining = q(row.total - row.reserved - row.spent)
        raise Problem(
            409,
            f"预算不足:{jurisdiction} {fund} {year} 年度剩余 {remaining} 元,本次需 {amount} 元"
            " (budget would be overdrawn)",
            remaining=str(remaining),
            requested=str(amount),
        )
    await post(session, "reserve", jurisdiction, fund, year, amount, entitlement_id=entitlement_id, memo="审批预留")


async def release(
    session: AsyncSession, jurisdiction: str, fund: str, year: int, amount: Decimal, entitlement_id: uuid.UUID
) -> None:
    if await post(session, "release", jurisdiction, fund, year, amount, entitlement_id=entitlement_id, memo="取消释放"):
        await session.execute(
            update(BudgetRow)
            .where(_budget_where(jurisdiction, fund, year))
            .values(reserved=BudgetRow.reserved - q(amount))
        )


async def consume(
    session: AsyncSession, jurisdiction: str, fund: str, year: int, amount: Decimal, entitlement_id: uuid.UUID
) -> bool:
    """Payment confirmed: reserved → spent, once per entitlement."""
    if not await post(session, "pay", jurisdiction, fund, year, amount, entitlement_id=entitlement_id, memo="拨付"):
        return False
    await session.execute(
        update(BudgetRow)
        .where(_budget_where(jurisdiction, fund, year))
        .values(reserved=BudgetRow.reserved - q(amount), spent=BudgetRow.spent + q(amount))
    )
    return True


async def repaid(
    session: AsyncSession, jurisdiction: str, fund: str, year: int, amount: Decimal, entitlement_id: uuid.UUID
) -> bool:
    if not await post(
        session, "repaid", jurisdiction, fund, year, amount, entitlement_id=entitlement_id, memo="追回到账"
    ):
        return False
    await session.execute(
        update(BudgetRow).where(_budget_where(jurisdiction, fund, year)).values(spent=BudgetRow.spent - q(amount))
    )
    return True


# ------------------------------------------------------------------ seeds


def load_seed_file(path: Path = SEED_FILE) -> list[dict[str, Any]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return list(data["policies"])


async def upsert_policy(
    session: AsyncSession, data: dict[str, Any], *, actor: str = "seed", status: str = "published"
) -> bool:
    """Insert or update a seeded policy by id; returns True when it was new."""
    values = {
        "id": data["id"],
        "name": data["name"],
        "jurisdiction": data["jurisdiction"],
        "fund": data["fund"],
        "kind": data["kind"],
        "status": status,
        "effective_from": date.fromisoformat(str(data["effective_from"])),
        "effective_to": date.fromisoformat(str(data["effective_to"])) if data.get("effective_to") else None,
        "document": data.get("document", ""),
        "spec": spec_of(data),
        "created_by": actor,
    }
    stmt = insert(PolicyRow).values(**values, published_at=text("now()"))
    upsert = stmt.on_conflict_do_update(
        index_elements=["id"],
        set_={
            k: stmt.excluded[k] for k in ("name", "fund", "kind", "effective_from", "effective_to", "document", "spec")
        },
    ).returning(text("(xmax = 0) AS inserted"))
    return bool((await session.execute(upsert)).scalar())
