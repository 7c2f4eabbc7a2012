"""The agency feeds registry applies (shared/events/agency.py), each in the consumer's transaction and audited
with the agency as the actor:

- 市场监管: deregistered (status, pools ended, ``enterprise.deregistered``), renamed and legal representative
  changed (``enterprise.updated``), moved to another region (``enterprise.updated`` + ``enterprise.moved``; the
  pools follow: ``app/moves.py``);
- 税务: the year's revenue, R&D expense deduction base and taxes paid become an ``agency:<name>`` indicator
  revision (agency precedence over self-reports), published as ``indicators.reported`` (evaluation re-runs).

A message about an enterprise registry does not hold, or that contradicts it (a move from a region it is not in),
is refused (``EventRejected``: the DLQ with the reason); the feed goes on.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.app import enterprises as cases
from services.registry.app.indicators import InconsistentIndicators, IndicatorReport, report_indicators
from services.registry.app.moves import follow_move, region_label
from services.registry.db import enterprises as ents
from services.registry.db.models import Enterprise, backbone
from services.registry.events import contracts as ev
from shared.audit import record_audit
from shared.auth import Principal
from shared.events import agency as contracts
from shared.events.consumer import EventRejected
from shared.events.outbox import emit
from shared.regions import region_tree


async def _enterprise(session: AsyncSession, uscc: str) -> Enterprise:
    ent = (await session.scalars(select(Enterprise).where(Enterprise.uscc == uscc).with_for_update())).first()
    if ent is None:
        raise EventRejected(f"企业 {uscc} 未在库 (unknown enterprise)")
    return ent


def _active(ent: Enterprise) -> None:
    if ent.status != "active":
        raise EventRejected(f"企业 {ent.uscc} 已注销,不能变更 (enterprise deregistered)")


async def _updated(session: AsyncSession, actor: Principal, ent: Enterprise, before: dict[str, Any]) -> None:
    """Bump the version, publish ``enterprise.updated`` and audit the change (nothing if nothing changed)."""
    if ents.snapshot(ent) == before:
        return
    ent.version += 1
    ent.updated_at = datetime.now(UTC)
    await emit(session, backbone, ev.UPDATED, ent.uscc, cases.facts_payload(ent), regioncode=ent.region_code)
    await record_audit(session, backbone, actor, "enterprise.update", "enterprise", ent.uscc,
                       before=before, after=ents.snapshot(ent))


async def deregistered(session: AsyncSession, p: contracts.EnterpriseDeregistered) -> None:
    actor = contracts.agency_actor(p.agency, p.region_code)
    ent = await _enterprise(session, p.uscc)
    if ent.status != "active":
        await record_audit(session, backbone, actor, "enterprise.deregister.noted", "enterprise", ent.uscc,
                           after={"deregistered_on": p.deregistered_on, "reason": p.reason})
        return
    reason = f"{p.agency}: {p.reason} ({p.deregistered_on.isoformat()})"
    await cases.deregister(session, actor.model_copy(update={"region": ent.region_code}), ent.uscc, reason, None)


async def renamed(session: AsyncSession, p: contracts.EnterpriseRenamed) -> None:
    actor = contracts.agency_actor(p.agency, p.region_code)
    ent = await _enterprise(session, p.uscc)
    _active(ent)
    before = ents.snapshot(ent)
    ent.name = p.new_name.strip()
    await _updated(session, actor, ent, before)


async def representative_changed(session: AsyncSession, p: contracts.RepresentativeChanged) -> None:
    actor = contracts.agency_actor(p.agency, p.region_code)
    ent = await _enterprise(session, p.uscc)
    _active(ent)
    before = ents.snapshot(ent)
    ent.legal_representative = p.legal_representative.strip()
    if ents.snapshot(ent) != before:
        # not part of the enterprise facts other services keep: audited, no event
        ent.updated_at = datetime.now(UTC)
        await record_audit(session, backbone, actor, "enterprise.legal_representative", "enterprise", ent.uscc,
                           before={"legal_representative": before["legal_representative"]},
                           after={"legal_representative": ent.legal_representative,
                                  "effective_on": p.effective_on})


async def moved(session: AsyncSession, p: contracts.EnterpriseMoved) -> None:
    actor = contracts.agency_actor(p.agency, p.to_region_code)
    ent = await _enterprise(session, p.uscc)
    _active(ent)
    tree = region_tree()
    target = tree.get(p.to_region_code)
    if target is None or target.status != "active" or target.level != "county":
        raise EventRejected(f"迁入区划 {p.to_region_code} 不是有效的县级区划 (to_region_code)")
    if ent.region_code == p.to_region_code:
        return  # already there (an official changed it first): nothing follows twice
    if ent.region_code != p.from_region_code:
        raise EventRejected(
            f"企业 {ent.uscc} 所属区划为 {region_label(ent.region_code)},与迁出区划 {p.from_region_code} 不符"
        )
    before = ents.snapshot(ent)
    ent.region_code = p.to_region_code
    await _updated(session, actor, ent, before)
    await follow_move(session, actor, ent, p.from_region_code, p.effective_on, actor.sub)


# 税务 figures → indicator fields (研发费用加计扣除基数 is the tax-audited 研发费用 of the year)
TAX_FIELDS = {"operating_revenue": "operating_revenue", "rd_deduction_base": "rd_expense", "tax_paid": "tax_paid"}


async def tax_reported(session: AsyncSession, p: contracts.TaxReported) -> None:
    actor = contracts.agency_actor(p.agency, p.region_code)
    ent = await _enterprise(session, p.uscc)
    _active(ent)
    values: dict[str, Any] = {}
    for field, indicator in TAX_FIELDS.items():
        amount: Decimal | None = getattr(p, field)
        if amount is not None:
            values[indicator] = f"{amount:.2f}"
    if not values:
        raise EventRejected("税务数据为空 (no figures)")
    try:
        await report_indicators(session, actor, actor.sub,
                                [IndicatorReport(ent, p.year, f"agency:{p.agency}", values)])
    except InconsistentIndicators as exc:
        raise EventRejected(f"税务数据与已报指标不一致: {exc.detail}") from exc
