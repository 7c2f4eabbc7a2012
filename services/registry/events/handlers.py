"""Consumed events.

- The evaluation service's recognitions → the current-tiers read model. State is kept per recognition id, so
  redelivery and reordering are harmless: a recognised event never resurrects a recognition that already ended
  (expired / revoked), and an end event that arrives before its recognised event creates the row in its final
  state.
- The evaluation service's completed evaluations → entry into the county pool by rule result.
- The notification service's commissioner assignments → the current-assignment read model (commissioner scope).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import and_, func, or_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.app.pools import pool_moved
from services.registry.app.recognitions import initial_status
from services.registry.db.models import (
    CommissionerAssignment,
    Pool,
    Recognition,
    backbone,
)
from services.registry.db.pools import county_pools, get_or_create_pool
from services.registry.domain import classify
from services.registry.domain.dates import today
from services.registry.events import contracts as ev
from services.registry.events.agency_handlers import AGENCY_HANDLERS
from shared.audit import audit_row, record_audit, record_audits
from shared.context import correlation_id_var, event_id_var
from shared.db import driver_connection, insert_or_skip_conflicts
from shared.events.envelope import CloudEvent
from shared.events.outbox import emit_many, outbox_row


async def on_recognised(session: AsyncSession, event: CloudEvent) -> None:
    data = ev.TierRecognised.model_validate(event.data)
    values = {
        "recognition_id": data.recognition_id,
        "uscc": data.uscc,
        "region_code": data.region_code or event.regioncode,
        "tier": data.tier,
        "level": data.level,
        "ruleset_id": data.ruleset_id,
        "batch_year": data.batch_year,
        "announced_on": data.announced_on,
        "valid_from": data.valid_from,
        "valid_to": data.valid_to,
        # a title announced for a later day is upcoming until then (promoted by the promotion worker)
        "status": initial_status(data.valid_from, today()),
    }
    stmt = insert(Recognition).values(**values)
    fields = (
        "uscc",
        "region_code",
        "tier",
        "level",
        "ruleset_id",
        "batch_year",
        "announced_on",
        "valid_from",
        "valid_to",
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["recognition_id"],
        set_={**{k: getattr(stmt.excluded, k) for k in (*fields, "status")}, "updated_at": func.now()},
        # an ended recognition keeps its end state; only its facts are filled in
        where=Recognition.status.in_(("valid", "upcoming")),
    )
    await session.execute(stmt)
    await _fill_if_ended(session, values)
    await record_audit(session, backbone, None, "tier.recognised", "recognition", data.recognition_id, after=values)


async def _fill_if_ended(session: AsyncSession, values: Mapping[str, object]) -> None:
    """If the end event came first, the row exists without dates: fill them without changing the status."""
    from sqlalchemy import update

    await session.execute(
        update(Recognition)
        .where(
            Recognition.recognition_id == values["recognition_id"],
            Recognition.status.not_in(("valid", "upcoming")),
            Recognition.valid_from.is_(None),
        )
        .values(
            valid_from=values["valid_from"],
            valid_to=values["valid_to"],
            ruleset_id=values["ruleset_id"],
            batch_year=values["batch_year"],
            announced_on=values["announced_on"],
        )
    )


async def _end(session: AsyncSession, event: CloudEvent, status: str) -> None:
    base: ev.TierExpired | ev.TierRevoked
    if status == "expired":
        exp = ev.TierExpired.model_validate(event.data)
        base, ended_on, ground = exp, exp.expired_on, None
    else:
        rev = ev.TierRevoked.model_validate(event.data)
        base, ended_on, ground = rev, rev.revoked_on, rev.ground
    values = {
        "recognition_id": base.recognition_id,
        "uscc": base.uscc,
        "region_code": base.region_code or event.regioncode,
        "tier": base.tier,
        "level": base.level,
        "status": status,
        "ended_on": ended_on,
        "ground": ground,
    }
    stmt = insert(Recognition).values(**values)
    # revoked is final; expired does not overwrite revoked
    stmt = stmt.on_conflict_do_update(
        index_elements=["recognition_id"],
        set_={"status": status, "ended_on": ended_on, "ground": ground, "updated_at": func.now()},
        where=(Recognition.status != "revoked") if status == "expired" else None,
    )
    await session.execute(stmt)
    await record_audit(session, backbone, None, f"tier.{status}", "recognition", base.recognition_id, after=values)


async def on_expired(session: AsyncSession, event: CloudEvent) -> None:
    await _end(session, event, "expired")


async def on_revoked(session: AsyncSession, event: CloudEvent) -> None:
    await _end(session, event, "revoked")


# ---------------------------------------------------------------- pool entry by rule result

RULE_ACTOR = "system:evaluation"


# The set-based statements take arrays, so their text (and the server's prepared plan) is the same whatever
# the batch size.
_COMPLETED_BATCH = TypeAdapter(list[ev.EvaluationCompleted])
# (run on the driver connection: 100,000 events of a re-evaluation pass here in batches, and SQLAlchemy's
# statement and result layers cost more per row than the statements themselves)
_LOCK_ACTIVE = (
    "SELECT uscc, region_code FROM registry.enterprises WHERE uscc = ANY($1::text[]) "
    "AND status = 'active' ORDER BY uscc FOR UPDATE"
)
_MEMBERSHIPS = (
    "SELECT pool_id, uscc, year, exited_on FROM registry.pool_memberships "
    "WHERE uscc = ANY($1::text[]) AND pool_id = ANY($2::int[])"
)
_ENTER = (
    "INSERT INTO registry.pool_memberships (pool_id, uscc, year, basis, reason, entered_on, entered_by) "
    "SELECT p, u, y, 'rule_result', r, $5::date, $6::text "
    "FROM unnest($1::int[], $2::text[], $3::int[], $4::text[]) AS t(p, u, y, r) "
)
_ENTERED = " RETURNING id, pool_id, uscc"
# a concurrent nomination's active membership is skipped (and no row returned for it)
_ENTER_SKIPPING = " ON CONFLICT (pool_id, uscc) WHERE exited_on IS NULL DO NOTHING"


async def _enter(session: AsyncSession, args: tuple[Any, ...]) -> list[Any]:
    """Insert the memberships; (id, pool_id, uscc) of those inserted. A conflict (a nomination that entered the
    enterprise meanwhile) is rare: the plain insert is tried first (``insert_or_skip_conflicts``)."""
    raw = await driver_connection(session)
    return await insert_or_skip_conflicts(
        raw,
        lambda: raw.fetch(_ENTER + _ENTERED, *args),
        lambda: raw.fetch(_ENTER + _ENTER_SKIPPING + _ENTERED, *args),
    )


async def on_evaluation_completed(session: AsyncSession, event: CloudEvent) -> None:
    """One event (see ``on_evaluation_completed_many``)."""
    await on_evaluation_completed_many(session, [event])


async def on_evaluation_completed_many(session: AsyncSession, events: list[CloudEvent]) -> None:
    """An enterprise eligible for a county-pooled tier enters its county's pool for the year (basis rule_result).

    Skipped when it is already in that pool (any year) or the pool already has a membership of it for this year
    or a later one (e.g. entered and exited by an official: the official's decision stands). Never exits anyone.
    Idempotent: redelivery finds the active membership; a concurrent nomination is absorbed by the unique index.

    Set-based, for a re-evaluation job's 100,000 events: the events' enterprises are locked (in key order, like
    the nomination route locks one, so the two paths serialise), their memberships read, the entries inserted,
    and their ``pool.entered`` events and audit rows written, a handful of statements per batch. The events are
    decided in order, each seeing the entries of the ones before it, so the outcome is that of applying them one
    by one."""
    wanted: list[tuple[CloudEvent, str, int, list[tuple[str, str]]]] = []
    # one validation call for the batch (an invalid payload fails it: the consumer then applies the events one
    # by one, and dead-letters that one alone)
    payloads = _COMPLETED_BATCH.validate_python([event.data for event in events])
    for event, data in zip(events, payloads, strict=True):
        chosen: dict[str, str] = {}  # track → ruleset id of the first eligible result
        for r in data.results:
            if r.eligible and r.tier in classify.COUNTY_POOL_TRACKS:
                chosen.setdefault(r.tier, r.ruleset_id)
        if chosen:
            wanted.append((event, data.uscc.strip().upper(), data.year, sorted(chosen.items())))
    if not wanted:
        return
    raw = await driver_connection(session)
    locked = await raw.fetch(_LOCK_ACTIVE, sorted({w[1] for w in wanted}))
    region_of: dict[str, str] = {member: region for member, region in locked}
    wanted = [w for w in wanted if w[1] in region_of]
    if not wanted:
        return
    keys = {(region_of[u], track) for _, u, _, tracks in wanted for track, _ in tracks}
    pools = await county_pools(session, sorted(keys))
    for key in sorted(keys - pools.keys()):
        pools[key] = await get_or_create_pool(session, "county", *key)
    # (pool, uscc) → [(year, exited_on)] of its memberships
    held: dict[tuple[int, str], list[tuple[int, date | None]]] = defaultdict(list)
    for pool_id, member, year, exited_on in await raw.fetch(
        _MEMBERSHIPS, list(region_of), [p.id for p in pools.values()]
    ):
        held[(pool_id, member)].append((year, exited_on))
    entries: list[tuple[CloudEvent, Pool, str, int, str]] = []
    for event, member, year, tracks in wanted:
        for track, ruleset_id in tracks:
            pool = pools[(region_of[member], track)]
            mine = held[(pool.id, member)]
            if any(exited_on is None or y >= year for y, exited_on in mine):
                continue
            mine.append((year, None))
            entries.append((event, pool, member, year, ruleset_id))
    if not entries:
        return
    inserted = await _enter(session, (
        [e[1].id for e in entries], [e[2] for e in entries], [e[3] for e in entries], [e[4] for e in entries],
        today(), RULE_ACTOR,
    ))
    member_ids = {(pool_id, member): member_id for member_id, pool_id, member in inserted}
    outbox: list[dict[str, Any]] = []
    audits: list[dict[str, Any]] = []
    stamp = datetime.now(UTC).isoformat()  # the events' time: the batch's
    for event, pool, member, year, ruleset_id in entries:
        member_id = member_ids.get((pool.id, member))
        if member_id is None:  # a concurrent nomination won
            continue
        event_id_var.set(event.id)
        correlation_id_var.set(event.correlationid or event.id)
        region = region_of[member]
        outbox.append(outbox_row(backbone, ev.POOL_ENTERED, member, pool_moved(member, region, pool, year, ruleset_id),
                                 regioncode=region, time=stamp))
        audits.append(audit_row(backbone, None, "pool.enter", "pool_membership", str(member_id), after={
            "pool": pool.name, "uscc": member, "year": year, "basis": "rule_result", "reason": ruleset_id,
        }))
    await emit_many(session, backbone, outbox)
    await record_audits(session, backbone, audits)


# ---------------------------------------------------------------- commissioner assignments


def _region(code: str | None, event: CloudEvent) -> str | None:
    value = code or event.regioncode
    return value if value and len(value) <= 6 else None


async def _assign(session: AsyncSession, event: CloudEvent, uscc: str, values: dict[str, object]) -> None:
    """Upsert the enterprise's current assignment unless a newer event (time, then id) already set it."""
    row = {"uscc": uscc, **values, "event_time": event.time, "event_id": event.id}
    stmt = insert(CommissionerAssignment).values(**row)
    ca = CommissionerAssignment
    newer = or_(
        ca.event_time < stmt.excluded.event_time,
        and_(ca.event_time == stmt.excluded.event_time, ca.event_id < stmt.excluded.event_id),
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["uscc"],
        set_={**{k: getattr(stmt.excluded, k) for k in row if k != "uscc"}, "updated_at": func.now()},
        where=newer,
    )
    applied = (await session.execute(stmt.returning(ca.uscc))).first()
    if applied is not None:
        await record_audit(session, backbone, None, "commissioner.assignment", "enterprise", uscc, after=row)


async def on_commissioner_assigned(session: AsyncSession, event: CloudEvent) -> None:
    data = ev.CommissionerAssigned.model_validate(event.data)
    await _assign(
        session,
        event,
        data.uscc,
        {
            "commissioner_id": data.commissioner_id,
            "commissioner_name": data.commissioner_name,
            "region_code": _region(data.region_code, event),
            "tier": data.tier,
            "level": data.level,
            "reason": data.reason,
        },
    )


async def on_commissioner_unavailable(session: AsyncSession, event: CloudEvent) -> None:
    """Nobody serves the enterprise any more (the previous commissioner, if any, lost it)."""
    data = ev.CommissionerUnavailable.model_validate(event.data)
    await _assign(
        session,
        event,
        data.uscc,
        {
            "commissioner_id": None,
            "commissioner_name": None,
            "region_code": _region(data.region_code, event),
            "tier": data.tier,
            "level": data.level,
            "reason": "无可用服务专员",
        },
    )


async def on_commissioner_released(session: AsyncSession, event: CloudEvent) -> None:
    """The enterprise no longer has a commissioner (no title needs one, or it was deregistered)."""
    data = ev.CommissionerReleased.model_validate(event.data)
    await _assign(
        session,
        event,
        data.uscc,
        {
            "commissioner_id": None,
            "commissioner_name": None,
            "region_code": _region(data.region_code, event),
            "tier": None,
            "level": None,
            "reason": data.reason or "服务专员已解除",
        },
    )


HANDLERS = {
    ev.TIER_RECOGNISED: on_recognised,
    ev.TIER_EXPIRED: on_expired,
    ev.TIER_REVOKED: on_revoked,
    ev.EVALUATION_COMPLETED: on_evaluation_completed,
    ev.COMMISSIONER_ASSIGNED: on_commissioner_assigned,
    ev.COMMISSIONER_UNAVAILABLE: on_commissioner_unavailable,
    ev.COMMISSIONER_RELEASED: on_commissioner_released,
    **AGENCY_HANDLERS,  # 市场监管 and 税务 feeds (events/agency_handlers.py)
}

BATCH_HANDLERS = {ev.EVALUATION_COMPLETED: on_evaluation_completed_many}
