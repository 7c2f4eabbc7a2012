"""An enterprise moves to another region: what follows in registry (its pools) and the ``enterprise.moved``
event for the others (notification re-assigns the commissioner, evaluation re-announces its valid titles to the
new jurisdiction as migrated in, finance's new jurisdiction pays from then on).

Called by the market-supervision move (``app/agency.py``) and by an official's region change
(``app/enterprises.update``), after the enterprise's ``region_code`` was set to the new region.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.app.pools import pool_moved
from services.registry.db import enterprises as ents
from services.registry.db import pools as repo
from services.registry.db.models import Enterprise, backbone
from services.registry.domain.dates import today
from services.registry.events import contracts as ev
from shared.audit import record_audit
from shared.auth import Principal
from shared.events.outbox import emit
from shared.regions import region_tree


def region_label(code: str) -> str:
    name = region_tree().name(code)
    return f"{name}({code})" if name else code


async def follow_move(
    session: AsyncSession, actor: Principal | None, ent: Enterprise, from_region: str, moved_on: date, source: str
) -> None:
    """The enterprise (already in its new region) leaves the pools whose region does not cover the new one and
    enters the pool of the same level and track in the new region (same year and basis, reason 迁入); then
    ``enterprise.moved`` is published. Pools covering both regions (the province's, a shared city's) are kept."""
    to_region = ent.region_code
    tree = region_tree()
    for m, pool in await ents.active_memberships_for_update(session, ent.uscc):
        if tree.covers(pool.region_code, to_region):
            continue
        m.exited_on = today()
        m.exit_reason = f"企业迁出至{region_label(to_region)}"
        m.exited_by = actor.sub if actor else "system:registry"
        await emit(session, backbone, ev.POOL_EXITED, ent.uscc,
                   pool_moved(ent.uscc, from_region, pool, m.year, m.exit_reason), regioncode=from_region)
        await record_audit(session, backbone, actor, "pool.exit", "pool_membership", str(m.id),
                           after={"pool": pool.name, "uscc": ent.uscc, "reason": m.exit_reason})
        target = tree.ancestor(to_region, pool.level)
        if target is None:
            continue
        new_pool = await repo.get_or_create_pool(session, pool.level, target, pool.track)
        if await repo.active_membership_id(session, new_pool.id, ent.uscc) is not None:
            continue
        reason = f"自{region_label(from_region)}迁入"
        entry = repo.add_membership(
            session, pool_id=new_pool.id, uscc=ent.uscc, year=m.year, basis=m.basis, reason=reason,
            entered_on=today(), entered_by=m.exited_by, exited_on=None, exit_reason=None,
        )
        await session.flush()
        await emit(session, backbone, ev.POOL_ENTERED, ent.uscc,
                   pool_moved(ent.uscc, to_region, new_pool, m.year, reason), regioncode=to_region)
        await record_audit(session, backbone, actor, "pool.enter", "pool_membership", str(entry.id),
                           after={"pool": new_pool.name, "uscc": ent.uscc, "year": m.year, "basis": m.basis,
                                  "reason": reason})
    await emit(
        session, backbone, ev.MOVED, ent.uscc,
        ev.EnterpriseMoved(uscc=ent.uscc, from_region_code=from_region, to_region_code=to_region,
                           moved_on=moved_on, source=source, version=ent.version),
        regioncode=to_region,
    )
