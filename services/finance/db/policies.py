"""Policy repository: rows ↔ ``domain.policy.Policy``, queries, and the seed file (no commits here)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.finance.db.models import PolicyRow
from services.finance.domain.money import q
from services.finance.domain.policy import Policy, coverage

SEED_FILE = Path(__file__).resolve().parent.parent / "seeds" / "policies.yaml"
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


async def get(session: AsyncSession, policy_id: str, *, for_update: bool = False) -> PolicyRow | None:
    return await session.get(PolicyRow, policy_id, with_for_update=for_update)


async def listing(
    session: AsyncSession, *, jurisdiction: str | None, kind: str | None, status: str | None
) -> list[PolicyRow]:
    stmt = select(PolicyRow).order_by(PolicyRow.jurisdiction, PolicyRow.id)
    if jurisdiction:
        stmt = stmt.where(PolicyRow.jurisdiction == jurisdiction)
    if kind:
        stmt = stmt.where(PolicyRow.kind == kind)
    if status:
        stmt = stmt.where(PolicyRow.status == status)
    return list((await session.execute(stmt)).scalars())


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
