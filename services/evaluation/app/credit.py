"""The 信用 feed's effects (zjtx.agency.credit.listed / lifted, and the older listing.recorded): each in the
consumer's transaction, audited with the agency as the actor.

- listed: the listing is kept (active until lifted); the enterprise is re-evaluated (its latest year), so every
  rule set testing the condition shows it unmet (``domain/credit.py``); new applications under such a rule set
  are refused while it lasts; a 严重失信 listing also revokes the current titles when ``serious_dishonesty`` is a
  configured revocation ground (``ZJTX_EVAL_REVOCATION_GROUNDS``, default yes): tier.revoked then reaches
  finance (recovery / cancelled entitlement) and notification (the enterprise and its commissioner told).
- lifted: the listing ends; re-evaluated, the enterprise is eligible again for new applications. A revoked title
  stays revoked (a lifting never restores it).
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import Text, any_, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.evaluation.app.evaluating import evaluate_and_store, select_in_force
from services.evaluation.app.recognition import revoke
from services.evaluation.config import get_config
from services.evaluation.db.models import CreditListing, IndicatorReport, backbone
from services.evaluation.db.ruleset_store import latest_rulesets
from services.evaluation.domain import credit as rules
from services.evaluation.domain.rules import RuleSet
from shared.audit import record_audit
from shared.events.agency import agency_actor
from shared.events.envelope import dumps_text, loads
from shared.indicators import IndicatorSet
from shared.problems import Problem


def _split(rows: Any, on: date) -> dict[str, tuple[set[str], set[str]]]:
    """Per enterprise: (listings active on ``on``, listings an agency lifted that are not active)."""
    out: dict[str, tuple[set[str], set[str]]] = {}
    for r in rows:
        listed, cleared = out.setdefault(r.uscc, (set(), set()))
        if rules.is_active(r.listed_on, r.lifted_on, on):
            listed.add(r.listing)
        elif r.lifted_on is not None and r.lifted_on <= on:
            cleared.add(r.listing)
    return {u: (listed, cleared - listed) for u, (listed, cleared) in out.items()}


async def _listings(session: AsyncSession, usccs: list[str], on: date) -> dict[str, tuple[set[str], set[str]]]:
    rows = (await session.execute(
        select(CreditListing.uscc, CreditListing.listing, CreditListing.listed_on, CreditListing.lifted_on)
        # one array parameter: ``IN`` renders a parameter per enterprise at every execution (~10% of the
        # re-evaluation job's CPU for its 2,000-enterprise batches)
        .where(CreditListing.uscc == any_(bindparam("usccs", usccs, type_=ARRAY(Text))))
    )).all()
    return _split(rows, on)


async def listings_on(session: AsyncSession, uscc: str, on: date) -> tuple[set[str], set[str]]:
    """(listings active on ``on``, listings an agency lifted and that are not active)."""
    return (await _listings(session, [uscc], on)).get(uscc, (set(), set()))


async def credit_indicators_many(
    session: AsyncSession, indicators: dict[str, IndicatorSet], on: date
) -> dict[str, IndicatorSet]:
    """The indicators evaluations on ``on`` use (uscc → indicators): with the agencies' credit listings applied,
    read in one query."""
    found = await _listings(session, list(indicators), on)
    none: tuple[set[str], set[str]] = (set(), set())
    return {u: rules.overlay(i, *found.get(u, none)) for u, i in indicators.items()}


async def credit_overrides(session: AsyncSession, usccs: list[str], on: date) -> dict[str, dict[str, bool]]:
    """Per enterprise with an agency's credit word, the indicator values it sets (one query for a batch)."""
    found = await _listings(session, usccs, on)
    return {u: rules.overrides(listed, cleared) for u, (listed, cleared) in found.items()}


def with_overrides(indicators: Any, values: dict[str, bool] | None) -> Any:
    """Stored indicators (JSON text or object) with the credit values set."""
    if not values:
        return indicators
    if isinstance(indicators, (str, bytes)):
        return dumps_text({**loads(indicators), **values})
    return {**indicators, **values}


async def check_not_listed(
    session: AsyncSession, uscc: str, region_code: str, tier: str, on: date, *, action: str = "申报"
) -> None:
    """409 for a new application (or an announcement) while an active listing fails the hard conditions of a
    rule set in force for the tier in the enterprise's region (a rule set without the condition does not block)."""
    listed, _ = await listings_on(session, uscc, on)
    if not listed:
        return
    rulesets: list[RuleSet] = [rs for _, rs in await latest_rulesets(session)]
    for rs in select_in_force(rulesets, on, region_code, tier):
        blocking = rules.blocking_listings(rs, listed)
        if blocking:
            names = "、".join(rules.LISTING_NAMES[b] for b in blocking)
            raise Problem(
                409, f"企业列入{names},不符合《{rs.title}》的基本条件,不能{action} (credit listing)",
                errors=[{"field": "uscc", "message": f"列入{names}"}], listings=blocking,
            )


async def _reevaluate(session: AsyncSession, uscc: str) -> None:
    year = (await session.execute(select(func.max(IndicatorReport.year)).where(IndicatorReport.uscc == uscc))).scalar()
    if year is not None:
        await evaluate_and_store(session, uscc, int(year), get_config().decision_date(), trigger="credit")


async def listed(
    session: AsyncSession, *, uscc: str, region_code: str | None, agency: str, listing: str, listed_on: date,
    reason: str, decision_no: str | None,
) -> None:
    actor = agency_actor(agency, region_code)
    row = {"id": uuid.uuid4(), "uscc": uscc, "listing": listing, "agency": agency, "listed_on": listed_on,
           "reason": reason, "decision_no": decision_no}
    stmt = insert(CreditListing).values(**row).on_conflict_do_nothing(
        index_elements=["uscc", "listing"], index_where=CreditListing.lifted_on.is_(None)
    ).returning(CreditListing.id)
    if (await session.execute(stmt)).first() is None:
        await record_audit(session, backbone, actor, "credit.listed.noted", "enterprise", uscc,
                           after={**row, "note": "已在名单中 (already listed)"})
        return
    await record_audit(session, backbone, actor, "credit.listed", "enterprise", uscc, after=row)
    if listing in get_config().revocation_grounds:
        evidence = f"{agency}: {reason}" + (f" ({decision_no})" if decision_no else "")
        await revoke(session, None, uscc, listing, evidence, actor, listed_on, all_titles=True)
    await _reevaluate(session, uscc)


async def lifted(
    session: AsyncSession, *, uscc: str, region_code: str | None, agency: str, listing: str, lifted_on: date,
    reason: str | None,
) -> None:
    actor = agency_actor(agency, region_code)
    ended = (await session.execute(
        update(CreditListing)
        .where(CreditListing.uscc == uscc, CreditListing.listing == listing, CreditListing.lifted_on.is_(None))
        .values(lifted_on=lifted_on, lift_reason=reason, lifted_by=agency)
        .returning(CreditListing.id, CreditListing.listed_on)
    )).first()
    after = {"listing": listing, "lifted_on": lifted_on, "reason": reason}
    if ended is None:
        await record_audit(session, backbone, actor, "credit.lifted.noted", "enterprise", uscc,
                           after={**after, "note": "不在名单中 (not listed)"})
        return
    await record_audit(session, backbone, actor, "credit.lifted", "enterprise", uscc,
                       before={"listing": listing, "listed_on": ended.listed_on}, after=after)
    await _reevaluate(session, uscc)
