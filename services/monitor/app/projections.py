"""Reporting read models, fed by the events of every service (one call per event, in the consumer's transaction).

Each projection is an upsert keyed by the aggregate's id, so applying an event twice (a replay) changes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.monitor.db import archive
from services.monitor.db.models import (
    Application,
    Assignment,
    Budget,
    Enterprise,
    Entitlement,
    NoticeSent,
    Recognition,
    Target,
)
from services.monitor.domain.funnel import STAGE_RANK, stage_after_review
from services.monitor.domain.reports import nearness
from services.monitor.events import contracts as c
from shared.db import driver_connection
from shared.events.envelope import CloudEvent

Projection = Callable[[AsyncSession, CloudEvent], Awaitable[None]]


async def _enterprise(session: AsyncSession, event: CloudEvent) -> None:
    d = c.EnterpriseFacts.model_validate(event.data)
    values = {"uscc": d.uscc, "name": d.name, "region_code": d.region_code or archive.region_of(event),
              "status": d.status or "active"}
    stmt = insert(Enterprise).values(**values)
    await session.execute(stmt.on_conflict_do_update(index_elements=["uscc"], set_={
        k: func.coalesce(getattr(stmt.excluded, k), getattr(Enterprise, k)) for k in ("name", "region_code", "status")
    }))


async def _deregistered(session: AsyncSession, event: CloudEvent) -> None:
    d = c.Deregistered.model_validate(event.data)
    await session.execute(update(Enterprise).where(Enterprise.uscc == d.uscc).values(status="deregistered"))


async def _known_enterprise(session: AsyncSession, uscc: str, region_code: str | None) -> None:
    """Events of other services may come before the registry's: keep the enterprise's region meanwhile."""
    stmt = insert(Enterprise).values(uscc=uscc, region_code=region_code)
    await session.execute(stmt.on_conflict_do_update(
        index_elements=["uscc"], set_={"region_code": func.coalesce(Enterprise.region_code, stmt.excluded.region_code)}
    ))


_UPSERT_POOL = """
    INSERT INTO monitor.pool_members AS m (uscc, level, pool_region, track, year, region_code, active)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::text[], $7::bool[])
    ON CONFLICT ON CONSTRAINT pk_pool_members DO UPDATE SET active = excluded.active, region_code = excluded.region_code
"""


async def upsert_pool(session: AsyncSession, events: Sequence[CloudEvent]) -> None:
    """Pool entries and exits in order (the last one per enterprise and pool wins), in one statement."""
    rows: dict[tuple[str, str, str, str, int], tuple[Any, ...]] = {}
    for event in events:
        d = c.PoolMoved.model_validate(event.data)
        key = (d.uscc, d.level, d.pool_region, d.track, d.year)
        rows.pop(key, None)  # keep the order of the last move
        rows[key] = (*key, d.region_code, event.type == c.POOL_ENTERED)
    if rows:
        raw = await driver_connection(session)
        await raw.execute(_UPSERT_POOL, *(list(col) for col in zip(*rows.values(), strict=True)))


async def _pool(session: AsyncSession, event: CloudEvent) -> None:
    await upsert_pool(session, [event])


async def _target(session: AsyncSession, event: CloudEvent) -> None:
    d = c.TargetSet.model_validate(event.data)
    stmt = insert(Target).values(**d.model_dump())
    await session.execute(stmt.on_conflict_do_update(constraint="pk_targets", set_={"target": d.target}))


def _unmet(value: int | list[Any] | None) -> int | None:
    return len(value) if isinstance(value, list) else value


def _nearer(row: dict[str, Any], than: dict[str, Any]) -> bool:
    """Of two results for one tier (several rule sets: the county's, the province's, …): an eligible one, the best
    scored of those, else the nearest to qualifying — what the gap advice and the forecast mean by the tier."""
    if row["eligible"] != than["eligible"]:
        return bool(row["eligible"])
    if row["eligible"]:
        return (row["score"] or Decimal(0)) > (than["score"] or Decimal(0))
    return nearness(row["unmet"], row["yuan_gap"], row["score"]) < nearness(than["unmet"], than["yuan_gap"],
                                                                            than["score"])


def evaluation_rows(event: CloudEvent) -> list[dict[str, Any]]:
    """One row per tier: the tier's result, eligible or nearest, among the event's rule sets."""
    d = c.EvaluationCompleted.model_validate(event.data)
    rows: dict[str, dict[str, Any]] = {}
    for r in d.results:
        gap = r.yuan_gap
        unmet = _unmet(r.unmet)
        if gap is None and r.gaps and (unmet is None or unmet <= len(r.gaps)):
            # the yuan that would make it eligible: only when every unmet condition is a money gap
            needed = [g.yuan_needed for g in r.gaps]
            gap = None if None in needed else sum((n for n in needed if n is not None), Decimal(0))
        row = {"uscc": d.uscc, "tier": r.tier, "region_code": d.region_code or archive.region_of(event),
               "ruleset_id": r.ruleset_id, "year": d.year, "as_of": d.as_of, "eligible": r.eligible,
               "score": r.score, "unmet": unmet, "yuan_gap": gap, "event_time": event.time}
        if r.tier not in rows or _nearer(row, rows[r.tier]):
            rows[r.tier] = row
    return list(rows.values())


_UPSERT_EVALUATIONS = """
    INSERT INTO monitor.evaluations AS v
        (uscc, tier, region_code, ruleset_id, year, as_of, eligible, score, unmet, yuan_gap, event_time)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::date[], $7::bool[],
                         $8::numeric[], $9::int[], $10::numeric[], $11::timestamptz[])
    ON CONFLICT ON CONSTRAINT pk_evaluations DO UPDATE SET
        region_code = excluded.region_code, ruleset_id = excluded.ruleset_id, year = excluded.year,
        as_of = excluded.as_of, eligible = excluded.eligible, score = excluded.score, unmet = excluded.unmet,
        yuan_gap = excluded.yuan_gap, event_time = excluded.event_time
    WHERE v.event_time <= excluded.event_time
"""
_EVALUATION_COLUMNS = ("uscc", "tier", "region_code", "ruleset_id", "year", "as_of", "eligible", "score", "unmet",
                       "yuan_gap", "event_time")


async def upsert_evaluations(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """The latest result per enterprise and tier (a late, older event does not overwrite a newer one): one
    statement on the driver connection with a column array each (a re-evaluation's batches are 2,000 events of
    one or more results: no per-row parameters, so no limit of 32,767 and little work per row)."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        key = (row["uscc"], row["tier"])
        if key not in latest or latest[key]["event_time"] <= row["event_time"]:
            latest[key] = row
    if not latest:
        return
    raw = await driver_connection(session)
    values = list(latest.values())
    await raw.execute(_UPSERT_EVALUATIONS, *([r[c] for r in values] for c in _EVALUATION_COLUMNS))


async def _evaluation(session: AsyncSession, event: CloudEvent) -> None:
    await upsert_evaluations(session, evaluation_rows(event))


async def _set_stage(session: AsyncSession, application_id: str, stage: str) -> None:
    """Move an application forward (never back, except to rejected)."""
    current = await session.get(Application, application_id)
    if current is None:
        return
    if stage == "rejected" or STAGE_RANK.get(stage, 0) > STAGE_RANK.get(current.stage, 0):
        current.stage = stage


async def _submitted(session: AsyncSession, event: CloudEvent) -> None:
    d = c.ApplicationSubmitted.model_validate(event.data)
    stmt = insert(Application).values(application_id=d.application_id, uscc=d.uscc, region_code=d.region_code,
                                      tier=d.tier, level=d.level, batch_year=d.batch_year or event.time.year,
                                      stage="submitted")
    await session.execute(stmt.on_conflict_do_nothing(index_elements=["application_id"]))
    await _known_enterprise(session, d.uscc, d.region_code)


async def _reviewed(session: AsyncSession, event: CloudEvent) -> None:
    d = c.ReviewDecided.model_validate(event.data)
    stage = stage_after_review(d.stage, d.decision)
    if stage is not None:
        await _set_stage(session, d.application_id, stage)


async def _publicity(session: AsyncSession, event: CloudEvent) -> None:
    d = c.PublicityStarted.model_validate(event.data)
    await _set_stage(session, d.application_id, "publicity")


async def _recognised(session: AsyncSession, event: CloudEvent) -> None:
    d = c.TierRecognised.model_validate(event.data)
    region = d.region_code or archive.region_of(event) or ""
    stmt = insert(Recognition).values(recognition_id=d.recognition_id, uscc=d.uscc, region_code=region, tier=d.tier,
                                      level=d.level, batch_year=d.batch_year, valid_from=d.valid_from,
                                      valid_to=d.valid_to, status="valid")
    # an end event that came first keeps its status; the facts are filled in
    await session.execute(stmt.on_conflict_do_update(index_elements=["recognition_id"], set_={
        k: getattr(stmt.excluded, k) for k in ("batch_year", "valid_from", "valid_to")
    }))
    # the application that led to it (same enterprise and tier, still open) is recognised
    await session.execute(
        update(Application)
        .where(Application.uscc == d.uscc, Application.tier == d.tier,
               Application.stage.notin_(("rejected", "recognised")),
               (Application.batch_year == d.batch_year) if d.batch_year else Application.batch_year.is_not(None))
        .values(stage="recognised")
    )
    await _known_enterprise(session, d.uscc, region)


def _ended(status: str) -> Projection:
    async def project(session: AsyncSession, event: CloudEvent) -> None:
        if status == "expired":
            e = c.TierExpired.model_validate(event.data)
            rid, uscc, region, tier, level, on = (e.recognition_id, e.uscc, e.region_code, e.tier, e.level,
                                                  e.expired_on)
        else:
            r = c.TierRevoked.model_validate(event.data)
            rid, uscc, region, tier, level, on = (r.recognition_id, r.uscc, r.region_code, r.tier, r.level,
                                                  r.revoked_on)
        stmt = insert(Recognition).values(recognition_id=rid, uscc=uscc, region_code=region or "", tier=tier,
                                          level=level, status=status, ended_on=on)
        await session.execute(stmt.on_conflict_do_update(
            index_elements=["recognition_id"], set_={"status": status, "ended_on": on}
        ))
    return project


def _entitlement(status: str) -> Projection:
    async def project(session: AsyncSession, event: CloudEvent) -> None:
        d = c.EntitlementEvent.model_validate(event.data)
        stmt = insert(Entitlement).values(entitlement_id=d.entitlement_id, uscc=d.uscc, region_code=d.region_code,
                                          jurisdiction=d.jurisdiction, policy_name=d.policy_name, kind=d.kind,
                                          year=d.year, amount=d.amount, status=status)
        rank = case({"created": 0, "approved": 1, "paid": 2, "recovered": 3}, value=Entitlement.status, else_=0)
        new_rank = {"created": 0, "approved": 1}[status]
        await session.execute(stmt.on_conflict_do_update(index_elements=["entitlement_id"], set_={
            "amount": stmt.excluded.amount,
            "status": case((rank < new_rank, stmt.excluded.status), else_=Entitlement.status),
        }))
    return project


async def _paid(session: AsyncSession, event: CloudEvent) -> None:
    d = c.DisbursementPaid.model_validate(event.data)
    await session.execute(update(Entitlement).where(Entitlement.entitlement_id == d.entitlement_id).values(
        status=case((Entitlement.status == "recovered", Entitlement.status), else_="paid"),
        paid_amount=Entitlement.paid_amount + d.amount,
    ))


async def _recovered(session: AsyncSession, event: CloudEvent) -> None:
    d = c.RecoveryRaised.model_validate(event.data)
    await session.execute(update(Entitlement).where(Entitlement.entitlement_id == d.entitlement_id).values(
        status="recovered", recovered_amount=Entitlement.recovered_amount + d.amount,
    ))


async def _budget(session: AsyncSession, event: CloudEvent) -> None:
    d = c.BudgetChanged.model_validate(event.data)
    stmt = insert(Budget).values(jurisdiction=d.jurisdiction, fund=d.fund, year=d.year, amount=d.budget)
    await session.execute(stmt.on_conflict_do_update(constraint="pk_budgets", set_={"amount": d.budget}))


async def _assigned(session: AsyncSession, event: CloudEvent) -> None:
    d = c.CommissionerAssigned.model_validate(event.data)
    values = {"commissioner_id": d.commissioner_id, "commissioner_name": d.commissioner_name,
              "region_code": d.region_code or archive.region_of(event)}
    stmt = insert(Assignment).values(uscc=d.uscc, **values)
    await session.execute(stmt.on_conflict_do_update(index_elements=["uscc"], set_=values))


async def _released(session: AsyncSession, event: CloudEvent) -> None:
    from sqlalchemy import delete

    d = c.CommissionerReleased.model_validate(event.data)
    await session.execute(delete(Assignment).where(Assignment.uscc == d.uscc))


async def _notice(session: AsyncSession, event: CloudEvent) -> None:
    d = c.NoticeSent.model_validate(event.data)
    stmt = insert(NoticeSent).values(
        notice_id=d.notice_id, uscc=d.uscc, region_code=d.region_code or archive.region_of(event), kind=d.kind,
        kind_name=d.kind_name, recipient_kind=d.recipient_kind, commissioner_id=d.commissioner_id, tier=d.tier,
        channels=len(d.channels), year=d.year, occurred_at=d.occurred_at)
    await session.execute(stmt.on_conflict_do_nothing(index_elements=["notice_id"]))


PROJECTIONS: dict[str, Projection] = {
    c.ENTERPRISE_REGISTERED: _enterprise,
    c.ENTERPRISE_UPDATED: _enterprise,
    c.ENTERPRISE_DEREGISTERED: _deregistered,
    c.POOL_ENTERED: _pool,
    c.POOL_EXITED: _pool,
    c.TARGET_SET: _target,
    c.EVALUATION_COMPLETED: _evaluation,
    c.APPLICATION_SUBMITTED: _submitted,
    c.REVIEW_DECIDED: _reviewed,
    c.PUBLICITY_STARTED: _publicity,
    c.TIER_RECOGNISED: _recognised,
    c.TIER_EXPIRED: _ended("expired"),
    c.TIER_REVOKED: _ended("revoked"),
    c.ENTITLEMENT_CREATED: _entitlement("created"),
    c.ENTITLEMENT_APPROVED: _entitlement("approved"),
    c.DISBURSEMENT_PAID: _paid,
    c.RECOVERY_RAISED: _recovered,
    c.BUDGET_CHANGED: _budget,
    c.COMMISSIONER_ASSIGNED: _assigned,
    c.COMMISSIONER_RELEASED: _released,
    c.NOTICE_SENT: _notice,
}


_POOL_TYPES = frozenset({c.POOL_ENTERED, c.POOL_EXITED})
_SET_BASED = _POOL_TYPES | {c.EVALUATION_COMPLETED}


async def record(session: AsyncSession, events: Sequence[CloudEvent]) -> None:
    """Archive a run of new events and apply each to the read models (one transaction: the consumer's)."""
    await archive.append(session, events)
    # the two types that come by the hundred thousand (a re-evaluation and the pool entries it causes) are applied
    # set-based; a batch handler gets a run of one type, so their order among other types is kept
    evaluations = [row for e in events if e.type == c.EVALUATION_COMPLETED for row in evaluation_rows(e)]
    await upsert_evaluations(session, evaluations)
    await upsert_pool(session, [e for e in events if e.type in _POOL_TYPES])
    for event in events:
        project = PROJECTIONS.get(event.type)
        if project is not None and event.type not in _SET_BASED:
            await project(session, event)
