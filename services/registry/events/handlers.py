"""Consumed events: the evaluation service's recognitions → the current-tiers read model.

State is kept per recognition id, so redelivery and reordering are harmless: a recognised event never
resurrects a recognition that already ended (expired / revoked), and an end event that arrives before
its recognised event creates the row in its final state.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.db.models import Recognition, backbone
from services.registry.events import payloads as ev
from shared.audit import record_audit
from shared.events.envelope import CloudEvent


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
        "status": "valid",
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
        set_={**{k: getattr(stmt.excluded, k) for k in fields}, "updated_at": func.now()},
        # an ended recognition keeps its end state; only its facts are filled in
        where=Recognition.status == "valid",
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
            Recognition.status != "valid",
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


HANDLERS = {ev.TIER_RECOGNISED: on_recognised, ev.TIER_EXPIRED: on_expired, ev.TIER_REVOKED: on_revoked}
