"""Pool use cases: entry by nomination, exit with reason, the published lists, and the pool.* events."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.db import enterprises as ents
from services.registry.db import pools as repo
from services.registry.db.models import Enterprise, Pool, backbone
from services.registry.db.regions import RegionIndex, region_index
from services.registry.domain import classify
from services.registry.domain.commands import PoolEntryIn, PoolExitIn
from services.registry.domain.dates import today, year_end
from services.registry.events import contracts as ev
from shared.audit import audit_row, record_audit, record_audits
from shared.auth import Principal, Role, region_covers
from shared.context import correlation_id_var, event_id_var
from shared.events.envelope import CloudEvent
from shared.events.outbox import emit, emit_many, outbox_row
from shared.problems import Problem, field_error, not_found
from shared.tiers import TIERS


def check_pool_region(level: str, region: str, regions: RegionIndex) -> None:
    r = regions.regions.get(region)
    if r is None or r.status != "active":
        raise not_found("区划")
    if r.level != level:
        raise field_error("level", f"培育库层级“{level}”与区划“{region}”({r.name},{r.level})不符")


def pool_moved(uscc: str, region: str, pool: Pool, year: int, reason: str | None) -> dict[str, Any]:
    """The payload of ``pool.entered`` / ``pool.exited`` for an enterprise (its USCC and region) and a pool: the
    JSON object of ``ev.PoolMoved``, its fields in its order (built directly: a re-evaluation's batch handler
    writes tens of thousands, and validating a model per entry cost more than the rest of its row; a test holds
    it to the model)."""
    return {"uscc": uscc, "region_code": region, "pool_id": pool.id, "level": pool.level,
            "pool_region": pool.region_code, "track": pool.track, "year": year, "reason": reason}


async def pool_move_event(
    session: AsyncSession, ent: Enterprise, pool: Pool, year: int, reason: str | None, event_type: str
) -> None:
    await emit(
        session, backbone, event_type, ent.uscc, pool_moved(ent.uscc, ent.region_code, pool, year, reason),
        regioncode=ent.region_code,
    )


def _membership_view(pool: Pool, m: Any) -> dict[str, Any]:
    return {
        "pool_id": pool.id,
        "level": pool.level,
        "pool_region": pool.region_code,
        "track": pool.track,
        "year": m.year,
        "basis": m.basis,
        "entered_on": m.entered_on,
        "exited_on": m.exited_on,
        "exit_reason": m.exit_reason,
    }


async def enter(
    session: AsyncSession, principal: Principal, level: str, region: str, body: PoolEntryIn
) -> dict[str, Any]:
    if not principal.covers_region(region):
        raise not_found("培育库")
    check_pool_region(level, region, await region_index(session))
    ent = await ents.get_visible(session, principal, body.uscc, for_update=True)
    if ent.status != "active":
        raise Problem(409, "企业已注销,不能入库")
    if not region_covers(region, ent.region_code):
        raise field_error("uscc", f"企业所在区划 {ent.region_code} 不属于培育库区划 {region}")
    pool = await repo.get_or_create_pool(session, level, region, body.track)
    pool_name = pool.name
    if await repo.active_membership_id(session, pool.id, ent.uscc) is not None:
        raise Problem(409, f"企业已在{pool_name}中", errors=[{"field": "uscc", "message": "已在库"}])
    m = repo.add_membership(
        session,
        pool_id=pool.id,
        uscc=ent.uscc,
        year=body.year,
        basis=body.basis,
        reason=body.reason,
        entered_on=today(),
        entered_by=principal.sub,
        exited_on=None,
        exit_reason=None,
    )
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Problem(409, f"企业已在{pool_name}中", errors=[{"field": "uscc", "message": "已在库"}]) from exc
    await pool_move_event(session, ent, pool, body.year, body.reason or body.basis, ev.POOL_ENTERED)
    await record_audit(
        session,
        backbone,
        principal,
        "pool.enter",
        "pool_membership",
        str(m.id),
        after={"pool": pool.name, "uscc": ent.uscc, "year": body.year, "basis": body.basis},
    )
    return _membership_view(pool, m)


async def exit_(
    session: AsyncSession, principal: Principal, level: str, region: str, uscc: str, body: PoolExitIn
) -> dict[str, Any]:
    if not principal.covers_region(region):
        raise not_found("培育库")
    ent = await ents.get_visible(session, principal, uscc, for_update=True)
    row = await repo.active_membership_for_update(session, level, region, body.track, ent.uscc)
    if row is None:
        raise not_found("在库记录")
    m, pool = row
    m.exited_on = today()
    m.exit_reason = body.reason
    m.exited_by = principal.sub
    await pool_move_event(session, ent, pool, m.year, body.reason, ev.POOL_EXITED)
    await record_audit(
        session,
        backbone,
        principal,
        "pool.exit",
        "pool_membership",
        str(m.id),
        after={"pool": pool.name, "uscc": ent.uscc, "reason": body.reason},
    )
    return _membership_view(pool, m)


async def published_list(
    session: AsyncSession, principal: Principal, level: str, region: str, year: int | None, track: str | None
) -> dict[str, Any]:
    if principal.role == Role.ENTERPRISE:
        raise Problem(403, "企业用户无权查看培育库名单")
    if track is not None and track not in TIERS:
        raise field_error("track", "培育方向无效")
    if not principal.covers_region(region):
        raise not_found("培育库")
    regions = await region_index(session)
    check_pool_region(level, region, regions)
    pools = await repo.pools_of(session, level, region, track)
    by_id = {p.id: p for p in pools}
    rows = await repo.members(session, list(by_id), None if year is None else year_end(year))
    counts: dict[int, int] = {}
    for m, _ in rows:
        counts[m.pool_id] = counts.get(m.pool_id, 0) + 1
    return {
        "level": level,
        "region_code": region,
        "region_name": regions.name(region),
        "year": year,
        "pools": [{"pool_id": p.id, "name": p.name, "track": p.track, "count": counts.get(p.id, 0)} for p in pools],
        "members": [
            {
                "uscc": e.uscc,
                "name": e.name,
                "region_code": e.region_code,
                "track": by_id[m.pool_id].track,
                "year": m.year,
                "basis": m.basis,
                "entered_on": m.entered_on,
                "exited_on": m.exited_on,
            }
            for m, e in rows
        ],
    }


# ---------------------------------------------------------------- entry by rule result

RULE_ACTOR = "system:evaluation"


async def enter_by_rule_results(
    session: AsyncSession, completed: Sequence[tuple[CloudEvent, ev.EvaluationCompleted]]
) -> None:
    """An enterprise eligible for a county-pooled tier enters its county's pool for the year (basis rule_result).

    Skipped when it is already in that pool (any year) or the pool already has a membership of it for this year
    or a later one (e.g. entered and exited by an official: the official's decision stands). Never exits anyone.
    Idempotent: redelivery finds the active membership; a concurrent nomination is absorbed by the unique index.

    Set-based, for a re-evaluation job's 100,000 events: the events' enterprises are locked (in key order, like
    the nomination route locks one, so the two paths serialise), their memberships read, the entries inserted,
    and their ``pool.entered`` events and audit rows written, a handful of statements per batch. The events are
    decided in order, each seeing the entries of the ones before it, so the outcome is that of applying them one
    by one. Each entry's event and audit row carry its evaluation event's id and correlation."""
    wanted: list[tuple[CloudEvent, str, int, list[tuple[str, str]]]] = []
    for event, data in completed:
        chosen: dict[str, str] = {}  # track → ruleset id of the first eligible result
        for r in data.results:
            if r.eligible and r.tier in classify.COUNTY_POOL_TRACKS:
                chosen.setdefault(r.tier, r.ruleset_id)
        if chosen:
            wanted.append((event, data.uscc.strip().upper(), data.year, sorted(chosen.items())))
    if not wanted:
        return
    region_of = await repo.lock_active(session, sorted({w[1] for w in wanted}))
    wanted = [w for w in wanted if w[1] in region_of]
    if not wanted:
        return
    keys = {(region_of[u], track) for _, u, _, tracks in wanted for track, _ in tracks}
    pools = await repo.county_pools(session, sorted(keys))
    for key in sorted(keys - pools.keys()):
        pools[key] = await repo.get_or_create_pool(session, "county", *key)
    # (pool, uscc) → [(year, exited_on)] of its memberships
    held: dict[tuple[int, str], list[tuple[int, date | None]]] = defaultdict(list)
    for pool_id, member, year, exited_on in await repo.memberships_of(
        session, list(region_of), [p.id for p in pools.values()]
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
    inserted = await repo.enter_rule_results(session, (
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
