"""What notification does when the programme moves: the use cases behind the event handlers.

Each runs inside the consumer's transaction (the inbox row is already written); ``event_id`` makes the
notices of one event unique per recipient.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.notification.app.assignment import reconcile
from services.notification.app.gap_advice import advise, record_rewards
from services.notification.app.notices import (
    Recipient,
    backfill_enterprise,
    commissioner_recipient,
    create_notice,
    enterprise_recipient,
    official_recipient,
)
from services.notification.app.policy_push import push_for_enterprise, push_policy_published
from services.notification.app.reminders import schedule_for_title
from services.notification.config import gap_advice_config
from services.notification.db import assignments as assignment_repo
from services.notification.db import enterprises as enterprise_repo
from services.notification.db import reminders as reminder_repo
from services.notification.domain.assignment import SERVICE_LEVEL_NAMES
from services.notification.domain.templates import DECISION_NAMES, STAGE_NAMES
from services.notification.domain.templates import LEVEL_NAMES as TITLE_LEVELS
from services.notification.events.contracts import (
    Assigned,
    DisbursementPaid,
    EnterpriseChanged,
    EntitlementApproved,
    EvaluationCompleted,
    PolicyPublished,
    PublicityStarted,
    RecheckDue,
    Recognised,
    ReviewDecided,
)
from services.notification.events.contracts import Deregistered as DeregisteredEvent
from services.notification.events.contracts import Ended as EndedEvent
from shared.events.consumer import EventRejected
from shared.tiers import TIER_NAMES, tier_name


def _money(amount: Decimal) -> str:
    return f"{amount.quantize(Decimal('0.01'))}"


async def _current_commissioner(session: AsyncSession, uscc: str) -> tuple[Recipient, dict[str, Any]] | None:
    cid = await assignment_repo.assigned_commissioner(session, uscc)
    return await commissioner_recipient(session, cid) if cid else None


async def _notify(
    session: AsyncSession,
    event_id: str,
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
    key = f"event:{event_id}"
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


async def enterprise_changed(session: AsyncSession, p: EnterpriseChanged) -> None:
    """Keep the enterprise and its liaison; a contact that arrives late gets the recent notices' sends."""
    liaison = p.liaison
    mobile, email = (liaison.mobile, liaison.email) if liaison else (None, None)
    values = {
        "name": p.name, "region_code": p.region_code, "liaison_name": liaison.name if liaison else None,
        "liaison_mobile": mobile, "liaison_email": email, "version": p.version,
        "deregistered": False, "updated_at": datetime.now(UTC),
    }
    before = await enterprise_repo.get(session, p.uscc, for_update=True)
    applied = await enterprise_repo.upsert_versioned(session, p.uscc, values)
    if applied and before is not None:
        contacts = (("sms", "liaison_mobile", mobile), ("email", "liaison_email", email))
        gained = tuple(ch for ch, col, new in contacts if new and not before[col])
        await backfill_enterprise(session, p.uscc, gained)
    if applied and before is not None and before["region_code"] != p.region_code:
        # moved to another region (registry's enterprise.moved follows): the commissioner of the new region
        await reconcile(session, p.uscc, reason=f"企业迁至{p.region_code}", event_key=f"moved:{p.uscc}:{p.version}")


async def deregistered(session: AsyncSession, p: DeregisteredEvent, event_id: str) -> None:
    await enterprise_repo.ensure(session, p.uscc, p.region_code)
    await enterprise_repo.mark_deregistered(session, p.uscc)
    await reminder_repo.cancel_for_enterprise(session, p.uscc)
    await reconcile(session, p.uscc, reason="企业已注销", event_key=event_id)


# --- evaluation ---------------------------------------------------------------------------------------------


async def recognised(session: AsyncSession, p: Recognised, event_id: str) -> None:
    """A title: keep it, schedule its reminders, tell the enterprise, assign its commissioner, push policies."""
    if p.tier not in TIER_NAMES:
        raise EventRejected(f"未知的认定类型 (unknown tier) {p.tier}")
    await enterprise_repo.ensure(session, p.uscc, p.region_code)
    await enterprise_repo.upsert_recognition(session, p.recognition_id, {
        "uscc": p.uscc, "region_code": p.region_code, "tier": p.tier, "level": p.level,
        "valid_from": p.valid_from, "valid_to": p.valid_to, "status": "active",
    })
    await schedule_for_title(session, recognition_id=p.recognition_id, uscc=p.uscc, tier=p.tier,
                             valid_to=p.valid_to, now=datetime.now(UTC))
    if not p.migrated_in:  # a re-announcement to the new jurisdiction is not news to the enterprise
        await _notify(session, event_id, p.uscc, "tier_recognised", {
            "tier_name": TIER_NAMES[p.tier], "level_name": TITLE_LEVELS.get(p.level, ""),
            "batch_year": p.batch_year, "valid_from": p.valid_from, "valid_to": p.valid_to,
        })
    await reconcile(session, p.uscc, reason=f"认定为{TIER_NAMES[p.tier]}", event_key=event_id)
    await push_for_enterprise(session, p.uscc)


async def ended(session: AsyncSession, p: EndedEvent, event_id: str, *, revoked: bool) -> None:
    """A title revoked or expired: its reminders stop, the enterprise (and others) are told, the commissioner
    follows the titles left."""
    await enterprise_repo.end_recognition(session, p.recognition_id, "revoked" if revoked else "expired")
    await reminder_repo.cancel_for_recognition(session, p.recognition_id)
    await enterprise_repo.ensure(session, p.uscc, p.region_code)
    name = tier_name(p.tier)
    if revoked:
        ban = f"{p.ban_until} 前不得重新申报。" if p.ban_until else ""
        await _notify(session, event_id, p.uscc, "tier_revoked",
                      {"tier_name": name, "revoked_on": p.revoked_on, "ground": p.ground, "ban": ban},
                      commissioner=True, official=("county_official", p.region_code))
    else:
        await _notify(session, event_id, p.uscc, "tier_expired", {"tier_name": name, "expired_on": p.expired_on},
                      commissioner=True)
    reason = f"{name}{'被撤销' if revoked else '到期'}"
    await reconcile(session, p.uscc, reason=reason, event_key=event_id)


async def recheck_due(session: AsyncSession, p: RecheckDue, event_id: str) -> None:
    await _notify(session, event_id, p.uscc, "recheck_due",
                  {"tier_name": tier_name(p.tier), "valid_to": p.valid_to, "due_on": p.due_on},
                  commissioner=True, official=("county_official", p.region_code))


async def review_decided(session: AsyncSession, p: ReviewDecided, event_id: str) -> None:
    await _notify(session, event_id, p.uscc, "review_decided", {
        "tier_name": tier_name(p.tier), "stage_name": STAGE_NAMES.get(p.stage, p.stage),
        "decision_name": DECISION_NAMES.get(p.decision, p.decision),
        "comment": f"意见:{p.comment}" if p.comment else "",
    })


async def publicity_started(session: AsyncSession, p: PublicityStarted, event_id: str) -> None:
    await _notify(session, event_id, p.uscc, "publicity_started",
                  {"tier_name": tier_name(p.tier), "starts_on": p.starts_on, "ends_on": p.ends_on})


async def evaluation_completed(session: AsyncSession, p: EvaluationCompleted) -> None:
    """Remember what the enterprise is eligible for, push the policies that now match, and advise it on the
    tiers it is near (精准服务)."""
    await enterprise_repo.ensure(session, p.uscc, p.region_code)
    await enterprise_repo.record_eligibility(session, p.uscc, p.year, [(r.tier, r.eligible) for r in p.results])
    await push_for_enterprise(session, p.uscc)
    await advise(session, p, gap_advice_config())


# --- finance ------------------------------------------------------------------------------------------------


async def entitlement_approved(session: AsyncSession, p: EntitlementApproved, event_id: str) -> None:
    await _notify(session, event_id, p.uscc, "entitlement_approved",
                  {"policy_name": p.policy_name, "amount": _money(p.amount)})


async def disbursement_paid(session: AsyncSession, p: DisbursementPaid, event_id: str) -> None:
    await _notify(session, event_id, p.uscc, "disbursement_paid",
                  {"amount": _money(p.amount), "paid_at": p.paid_at.date() if p.paid_at else ""})


async def policy_published(session: AsyncSession, p: PolicyPublished) -> None:
    await push_policy_published(session, p.model_dump(exclude={"rewards"}))
    await record_rewards(session, p)


# --- notification (own) -------------------------------------------------------------------------------------


async def assigned(session: AsyncSession, p: Assigned, event_id: str) -> None:
    """Tell the enterprise, the new commissioner and the one it replaces."""
    key = f"event:{event_id}"
    rec, evars = await enterprise_recipient(session, p.uscc)
    found = await commissioner_recipient(session, p.commissioner_id)
    cvars = found[1] if found else {"commissioner_name": p.commissioner_name, "commissioner_mobile": ""}
    change = ""
    if p.previous_commissioner_id:
        prev = await commissioner_recipient(session, p.previous_commissioner_id)
        prev_name = prev[1]["commissioner_name"] if prev else p.previous_commissioner_id
        change = f"原服务专员 {prev_name} 不再负责。调整原因:{p.reason}。"
    variables = {
        **evars, **cvars, "tier_name": tier_name(p.tier), "level_name": SERVICE_LEVEL_NAMES.get(p.level, ""),
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
