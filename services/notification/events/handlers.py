"""Event handlers: each runs inside the consumer's transaction (inbox row already written)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from pydantic import Field
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notification.assigning import ASSIGNED, LEVEL_NAMES, reconcile
from services.notification.db.models import assignments, enterprises, recognitions, reminders
from services.notification.domain.assignment import TIER_NAMES
from services.notification.domain.schedule import data_update_reminder, validity_reminders
from services.notification.domain.templates import DECISION_NAMES, STAGE_NAMES
from services.notification.domain.templates import LEVEL_NAMES as TITLE_LEVELS
from services.notification.notify import (
    Recipient,
    backfill_enterprise,
    commissioner_recipient,
    create_notice,
    enterprise_recipient,
    official_recipient,
)
from services.notification.pushing import push_for_enterprise, push_policy_published, record_eligibility
from shared.events.consumer import Handler
from shared.events.envelope import CloudEvent, EventReader


class Liaison(EventReader):
    name: str | None = None
    mobile: str | None = None
    email: str | None = None


class EnterpriseChanged(EventReader):
    uscc: str
    name: str
    region_code: str
    liaison: Liaison | None = None
    version: int = 0


class Deregistered(EventReader):
    uscc: str
    region_code: str
    version: int = 0


class Recognised(EventReader):
    recognition_id: str
    uscc: str
    region_code: str
    tier: str
    level: str
    batch_year: int | None = None
    announced_on: date | None = None
    valid_from: date | None = None
    valid_to: date | None = None


class Ended(EventReader):
    recognition_id: str
    uscc: str
    region_code: str
    tier: str
    level: str
    ground: str | None = None
    revoked_on: date | None = None
    expired_on: date | None = None
    ban_until: date | None = None


class RecheckDue(EventReader):
    recognition_id: str
    uscc: str
    region_code: str
    tier: str
    valid_to: date | None = None
    due_on: date


class ReviewDecided(EventReader):
    application_id: str
    uscc: str
    region_code: str
    tier: str
    stage: str
    decision: str
    comment: str | None = None


class PublicityStarted(EventReader):
    application_id: str
    uscc: str
    region_code: str
    tier: str
    starts_on: date
    ends_on: date


class EntitlementApproved(EventReader):
    entitlement_id: str
    uscc: str
    region_code: str
    policy_name: str
    amount: Decimal


class DisbursementPaid(EventReader):
    disbursement_id: str
    uscc: str
    region_code: str
    amount: Decimal
    paid_at: datetime | None = None


class Assigned(EventReader):
    uscc: str
    region_code: str
    tier: str
    level: str
    commissioner_id: str
    commissioner_name: str
    previous_commissioner_id: str | None = None
    reason: str


class EvalResult(EventReader):
    tier: str
    eligible: bool


class EvaluationCompleted(EventReader):
    uscc: str
    region_code: str
    year: int
    results: list[EvalResult]


class PolicyPublished(EventReader):
    policy_id: str
    name: str
    jurisdiction: str
    kind: str | None = None
    tiers: list[str] = Field(default_factory=list)
    effective_from: date | None = None
    effective_to: date | None = None
    summary: str | None = None


def _money(amount: Decimal) -> str:
    return f"{amount.quantize(Decimal('0.01'))}"


async def _ensure_enterprise(session: AsyncSession, uscc: str, region_code: str) -> None:
    """Recognition may arrive before the registry event: keep a stub the registry later completes."""
    await session.execute(
        insert(enterprises).values(uscc=uscc, region_code=region_code, version=0).on_conflict_do_nothing()
    )


async def _current_commissioner(session: AsyncSession, uscc: str) -> tuple[Recipient, dict[str, Any]] | None:
    cid = (
        await session.execute(
            select(assignments.c.commissioner_id).where(assignments.c.uscc == uscc, assignments.c.status == "assigned")
        )
    ).scalar()
    return await commissioner_recipient(session, cid) if cid else None


async def _notify(
    session: AsyncSession,
    event: CloudEvent,
    uscc: str,
    template: str,
    variables: dict[str, Any],
    *,
    commissioner: bool = False,
    official: tuple[str, str] | None = None,
) -> None:
    """Notify the enterprise (and optionally its commissioner and officials) once per event."""
    rec, evars = await enterprise_recipient(session, uscc)
    allvars = {**evars, **variables}
    key = f"event:{event.id}"
    await create_notice(session, dedup_key=key, recipient=rec, template=template, variables=allvars, uscc=uscc)
    if commissioner:
        found = await _current_commissioner(session, uscc)
        if found is not None:
            crec, cvars = found
            await create_notice(session, dedup_key=key, recipient=crec, template=template,
                                variables={**allvars, **cvars}, uscc=uscc)
    if official is not None:
        await create_notice(session, dedup_key=key, recipient=official_recipient(*official), template=template,
                            variables=allvars, uscc=uscc)


# --- registry -----------------------------------------------------------------------------------------------


async def on_enterprise(session: AsyncSession, event: CloudEvent) -> None:
    p = EnterpriseChanged.model_validate(event.data)
    liaison = p.liaison or Liaison()
    values = {
        "name": p.name, "region_code": p.region_code, "liaison_name": liaison.name,
        "liaison_mobile": liaison.mobile, "liaison_email": liaison.email, "version": p.version,
        "deregistered": False, "updated_at": datetime.now(UTC),
    }
    before = (
        await session.execute(select(enterprises).where(enterprises.c.uscc == p.uscc).with_for_update())
    ).mappings().first()
    stmt = insert(enterprises).values(uscc=p.uscc, **values)
    applied = (
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["uscc"], set_=values, where=enterprises.c.version <= stmt.excluded.version
            ).returning(enterprises.c.uscc)
        )
    ).first()
    if applied is not None and before is not None:
        contacts = (("sms", "liaison_mobile", liaison.mobile), ("email", "liaison_email", liaison.email))
        gained = tuple(ch for ch, col, new in contacts if new and not before[col])
        await backfill_enterprise(session, p.uscc, gained)


async def on_deregistered(session: AsyncSession, event: CloudEvent) -> None:
    p = Deregistered.model_validate(event.data)
    await _ensure_enterprise(session, p.uscc, p.region_code)
    await session.execute(update(enterprises).where(enterprises.c.uscc == p.uscc).values(deregistered=True))
    await session.execute(
        update(reminders).where(reminders.c.uscc == p.uscc, reminders.c.status == "pending").values(status="cancelled")
    )
    await reconcile(session, p.uscc, reason="企业已注销", event_key=event.id)


# --- evaluation ---------------------------------------------------------------------------------------------


async def schedule_reminders(session: AsyncSession, p: Recognised, now: datetime) -> None:
    rows: list[dict[str, Any]] = []
    if p.valid_to is not None:
        for days, due in validity_reminders(p.valid_to, now):
            rows.append({
                "key": f"validity:{p.recognition_id}:{days}", "kind": "validity_expiring", "uscc": p.uscc,
                "recognition_id": p.recognition_id, "due_at": due,
                "payload": {"days": days, "tier": p.tier, "valid_to": p.valid_to.isoformat()},
            })
    deadline, due = data_update_reminder(now)
    rows.append({
        "key": f"data_update:{p.uscc}:{deadline.year}", "kind": "data_update_deadline", "uscc": p.uscc,
        "recognition_id": None, "due_at": due, "payload": {"deadline": deadline.isoformat()},
    })
    await session.execute(insert(reminders).values(rows).on_conflict_do_nothing(index_elements=["key"]))


async def on_recognised(session: AsyncSession, event: CloudEvent) -> None:
    p = Recognised.model_validate(event.data)
    if p.tier not in TIER_NAMES:
        from shared.events.consumer import EventRejected

        raise EventRejected(f"未知的认定类型 (unknown tier) {p.tier}")
    await _ensure_enterprise(session, p.uscc, p.region_code)
    values = {
        "uscc": p.uscc, "region_code": p.region_code, "tier": p.tier, "level": p.level,
        "valid_from": p.valid_from, "valid_to": p.valid_to, "status": "active",
    }
    await session.execute(
        insert(recognitions).values(recognition_id=p.recognition_id, **values)
        .on_conflict_do_update(index_elements=["recognition_id"], set_=values)
    )
    await schedule_reminders(session, p, datetime.now(UTC))
    await _notify(session, event, p.uscc, "tier_recognised", {
        "tier_name": TIER_NAMES[p.tier], "level_name": TITLE_LEVELS.get(p.level, ""), "batch_year": p.batch_year,
        "valid_from": p.valid_from, "valid_to": p.valid_to,
    })
    await reconcile(session, p.uscc, reason=f"认定为{TIER_NAMES[p.tier]}", event_key=event.id)
    await push_for_enterprise(session, p.uscc)


async def _ended(session: AsyncSession, event: CloudEvent, revoked: bool) -> None:
    p = Ended.model_validate(event.data)
    await session.execute(
        update(recognitions).where(recognitions.c.recognition_id == p.recognition_id)
        .values(status="revoked" if revoked else "expired", updated_at=datetime.now(UTC))
    )
    await session.execute(
        update(reminders).where(reminders.c.recognition_id == p.recognition_id, reminders.c.status == "pending")
        .values(status="cancelled")
    )
    await _ensure_enterprise(session, p.uscc, p.region_code)
    tier_name = TIER_NAMES.get(p.tier, p.tier)
    if revoked:
        ban = f"{p.ban_until} 前不得重新申报。" if p.ban_until else ""
        await _notify(session, event, p.uscc, "tier_revoked",
                      {"tier_name": tier_name, "revoked_on": p.revoked_on, "ground": p.ground, "ban": ban},
                      commissioner=True, official=("county_official", p.region_code))
    else:
        await _notify(session, event, p.uscc, "tier_expired", {"tier_name": tier_name, "expired_on": p.expired_on},
                      commissioner=True)
    reason = f"{tier_name}{'被撤销' if revoked else '到期'}"
    await reconcile(session, p.uscc, reason=reason, event_key=event.id)


async def on_revoked(session: AsyncSession, event: CloudEvent) -> None:
    await _ended(session, event, revoked=True)


async def on_expired(session: AsyncSession, event: CloudEvent) -> None:
    await _ended(session, event, revoked=False)


async def on_recheck_due(session: AsyncSession, event: CloudEvent) -> None:
    p = RecheckDue.model_validate(event.data)
    await _notify(session, event, p.uscc, "recheck_due",
                  {"tier_name": TIER_NAMES.get(p.tier, p.tier), "valid_to": p.valid_to, "due_on": p.due_on},
                  commissioner=True, official=("county_official", p.region_code))


async def on_review_decided(session: AsyncSession, event: CloudEvent) -> None:
    p = ReviewDecided.model_validate(event.data)
    await _notify(session, event, p.uscc, "review_decided", {
        "tier_name": TIER_NAMES.get(p.tier, p.tier), "stage_name": STAGE_NAMES.get(p.stage, p.stage),
        "decision_name": DECISION_NAMES.get(p.decision, p.decision),
        "comment": f"意见:{p.comment}" if p.comment else "",
    })


async def on_publicity_started(session: AsyncSession, event: CloudEvent) -> None:
    p = PublicityStarted.model_validate(event.data)
    await _notify(session, event, p.uscc, "publicity_started",
                  {"tier_name": TIER_NAMES.get(p.tier, p.tier), "starts_on": p.starts_on, "ends_on": p.ends_on})


async def on_evaluation_completed(session: AsyncSession, event: CloudEvent) -> None:
    p = EvaluationCompleted.model_validate(event.data)
    await _ensure_enterprise(session, p.uscc, p.region_code)
    await record_eligibility(session, p.uscc, p.year, [(r.tier, r.eligible) for r in p.results])
    await push_for_enterprise(session, p.uscc)


# --- finance ------------------------------------------------------------------------------------------------


async def on_entitlement_approved(session: AsyncSession, event: CloudEvent) -> None:
    p = EntitlementApproved.model_validate(event.data)
    await _notify(session, event, p.uscc, "entitlement_approved",
                  {"policy_name": p.policy_name, "amount": _money(p.amount)})


async def on_disbursement_paid(session: AsyncSession, event: CloudEvent) -> None:
    p = DisbursementPaid.model_validate(event.data)
    await _notify(session, event, p.uscc, "disbursement_paid",
                  {"amount": _money(p.amount), "paid_at": p.paid_at.date() if p.paid_at else ""})


async def on_policy_published(session: AsyncSession, event: CloudEvent) -> None:
    p = PolicyPublished.model_validate(event.data)
    await push_policy_published(session, p.model_dump())


# --- notification (own) -------------------------------------------------------------------------------------


async def on_assigned(session: AsyncSession, event: CloudEvent) -> None:
    p = Assigned.model_validate(event.data)
    key = f"event:{event.id}"
    rec, evars = await enterprise_recipient(session, p.uscc)
    found = await commissioner_recipient(session, p.commissioner_id)
    cvars = found[1] if found else {"commissioner_name": p.commissioner_name, "commissioner_mobile": ""}
    change = ""
    if p.previous_commissioner_id:
        prev = await commissioner_recipient(session, p.previous_commissioner_id)
        prev_name = prev[1]["commissioner_name"] if prev else p.previous_commissioner_id
        change = f"原服务专员 {prev_name} 不再负责。调整原因:{p.reason}。"
    variables = {
        **evars, **cvars, "tier_name": TIER_NAMES.get(p.tier, p.tier), "level_name": LEVEL_NAMES.get(p.level, ""),
        "reason": p.reason, "change": change or "如有需要请直接联系。",
    }
    await create_notice(session, dedup_key=key, recipient=rec, template="commissioner_assigned_enterprise",
                        variables=variables, uscc=p.uscc)
    if found is not None:
        await create_notice(session, dedup_key=key, recipient=found[0], template="commissioner_assigned_commissioner",
                            variables=variables, uscc=p.uscc)
    if p.previous_commissioner_id and p.previous_commissioner_id != p.commissioner_id:
        prev = await commissioner_recipient(session, p.previous_commissioner_id)
        if prev is not None:
            await create_notice(session, dedup_key=key, recipient=prev[0], template="commissioner_released",
                                variables={**variables, **prev[1]}, uscc=p.uscc)


HANDLERS: dict[str, Handler] = {
    "zjtx.registry.enterprise.registered.v1": on_enterprise,
    "zjtx.registry.enterprise.updated.v1": on_enterprise,
    "zjtx.registry.enterprise.deregistered.v1": on_deregistered,
    "zjtx.evaluation.tier.recognised.v1": on_recognised,
    "zjtx.evaluation.tier.revoked.v1": on_revoked,
    "zjtx.evaluation.tier.expired.v1": on_expired,
    "zjtx.evaluation.recheck.due.v1": on_recheck_due,
    "zjtx.evaluation.review.decided.v1": on_review_decided,
    "zjtx.evaluation.publicity.started.v1": on_publicity_started,
    "zjtx.evaluation.evaluation.completed.v1": on_evaluation_completed,
    "zjtx.finance.entitlement.approved.v1": on_entitlement_approved,
    "zjtx.finance.disbursement.paid.v1": on_disbursement_paid,
    "zjtx.finance.policy.published.v1": on_policy_published,
    ASSIGNED: on_assigned,
}
