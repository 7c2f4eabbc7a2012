"""Entitlement life cycle: created (event or application) → approved (budget reserved, instruction queued)
→ paid (by the disbursement worker) | rejected | cancelled; revoked after payment → recovery (追回)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.finance.app import budgets
from services.finance.db import budgets as budget_repo
from services.finance.db import disbursements as disb_repo
from services.finance.db import entitlements as repo
from services.finance.db import ledger, policies, recoveries
from services.finance.db.enterprise_reads import entitlements_json
from services.finance.db.models import DisbursementRow, EntitlementRow, RecoveryRow, backbone
from services.finance.domain import entitlement as calc
from services.finance.domain.money import MAX_AMOUNT, ZERO, fmt, q
from services.finance.domain.policy import Policy, coverage
from services.finance.events import contracts as ev
from shared.audit import record_audit
from shared.auth import Principal, Role
from shared.db_reads import ReadPool, scope_of
from shared.events.outbox import emit
from shared.problems import Problem, not_found

SYSTEM = "system"


def event_payload(row: EntitlementRow) -> ev.EntitlementEvent:
    tier, level = calc.subject_tier(row.subject)
    return ev.EntitlementEvent(
        entitlement_id=str(row.id),
        uscc=row.uscc,
        region_code=row.region_code,
        jurisdiction=row.jurisdiction,
        policy_id=row.policy_id,
        policy_name=row.policy_name,
        kind=row.kind,
        amount=fmt(row.amount),
        year=row.year,
        fund=row.fund,
        status=row.status,
        tier=tier,
        level=level,
    )


def snapshot(row: EntitlementRow) -> dict[str, Any]:
    return {"status": row.status, "amount": fmt(row.amount), "decided_by": row.decided_by, "reason": row.reason}


async def _insert(
    session: AsyncSession,
    policy: Policy,
    comp: calc.Computation,
    *,
    uscc: str,
    region_code: str,
    subject: str,
    year: int,
    source: str,
    created_by: str,
    recognition_id: str | None = None,
    figures: dict[str, Any] | None = None,
) -> EntitlementRow | None:
    """INSERT … ON CONFLICT (business key) DO NOTHING: None when it already existed."""
    amount = q(comp.amount)
    return await repo.insert_once(
        session,
        {
            "uscc": uscc,
            "region_code": region_code,
            "jurisdiction": policy.jurisdiction,
            "policy_id": policy.id,
            "policy_name": policy.name,
            "kind": policy.kind,
            "fund": policy.fund,
            "subject": subject,
            "year": year,
            "amount": amount,
            "reference": q(comp.reference),
            "status": "pending" if amount > ZERO else "nothing_due",
            "explanation": comp.explanation(policy),
            "figures": figures,
            "recognition_id": recognition_id,
            "source": source,
            "created_by": created_by,
        },
    )


async def on_recognised(
    session: AsyncSession, data: ev.TierRecognised, actor: Principal | None = None, *, arrived_on: date | None = None
) -> list[EntitlementRow]:
    """Entitlements under every tier policy of the county, city and province covering the enterprise.
    ``arrived_on`` (the event's day) is when a migrated-in enterprise's year of operation here is checked."""
    on = data.announced_on or data.valid_from or date(data.batch_year, 12, 31)
    subject = calc.tier_subject(data.tier, data.level)
    created: list[EntitlementRow] = []
    deferred = False
    for policy in await policies.policies_covering(session, data.region_code, "tier_reward", on):
        if policy.tier_amount(data.tier, data.level) is None:
            continue
        await repo.lock(session, f"finance|{data.uscc}|{policy.id}")
        prior_rows = await repo.prior(session, data.uscc, policy.id)
        if any(p.subject == subject and p.year == data.batch_year for p in prior_rows):
            continue  # same business key already present
        prior = [
            calc.PriorAward(subject=p.subject, reference=p.reference, granted=p.amount, year=p.year)
            for p in prior_rows
            if p.kind == "tier_reward"
        ]
        comp = calc.tier_reward(
            policy,
            data.tier,
            data.level,
            prior=prior,
            renewal=data.renewal,
            migrated_in=data.migrated_in,
            moved_in_on=data.moved_in_on,
            as_of=arrived_on or datetime.now(UTC).date(),
        )
        if comp.rule in calc.NOT_YET_DUE:
            # Nothing recorded (a later event, once the condition holds, creates it); the reason is audited.
            await record_audit(
                session,
                backbone,
                actor,
                "entitlement.deferred",
                "enterprise",
                data.uscc,
                after={"policy_id": policy.id, "recognition_id": data.recognition_id, "steps": comp.steps},
            )
            deferred = deferred or comp.rule == "migrated_in_under_one_year"
            continue
        comp.steps.insert(0, f"认定编号 {data.recognition_id},{data.batch_year} 年度,公告日 {on.isoformat()}")
        row = await _insert(
            session,
            policy,
            comp,
            uscc=data.uscc,
            region_code=data.region_code,
            subject=subject,
            year=data.batch_year,
            source="event",
            created_by=SYSTEM,
            recognition_id=data.recognition_id,
        )
        if row is None:
            continue
        await record_audit(
            session, backbone, actor, "entitlement.created", "entitlement", str(row.id), after=snapshot(row)
        )
        if row.amount > ZERO:
            await emit(
                session, backbone, ev.ENTITLEMENT_CREATED, row.uscc, event_payload(row), regioncode=row.region_code
            )
        created.append(row)
    if deferred and data.moved_in_on is not None:
        # Applied again by the deferral worker on the day the year of operation here is complete.
        await repo.defer(
            session,
            uscc=data.uscc,
            recognition_id=data.recognition_id,
            region_code=data.region_code,
            payload=data.model_dump(mode="json"),
            due_on=calc.one_year_after(data.moved_in_on),
        )
    return created


async def apply_due_deferrals(session: AsyncSession, on: date) -> int:
    """Migrated-in titles whose year here is complete on ``on``: their rewards are computed now (one
    transaction; the deferrals taken are deleted in it). Returns how many recognitions were applied."""
    rows = await repo.take_due(session, on)
    for row in rows:
        await on_recognised(session, ev.TierRecognised.model_validate(row.payload), arrived_on=on)
    return len(rows)


async def create_application(
    session: AsyncSession,
    principal: Principal,
    policy: Policy,
    *,
    uscc: str,
    region_code: str,
    project_ref: str,
    year: int,
    figures: dict[str, Any],
) -> EntitlementRow:
    """A project-based application (investment, purchase, award, training) with its supporting figures."""
    await repo.lock(session, f"finance|{uscc}|{policy.id}")
    try:
        if policy.kind == "percentage":
            base = figures.get("approved_amount")
            if base is None:
                raise Problem(
                    422,
                    "比例补助须提供核定金额 approved_amount",
                    errors=[{"field": "figures.approved_amount", "message": "缺少核定金额"}],
                )
            previously = ZERO
            if policy.cap_scope == "enterprise":
                previously = q(await repo.granted_total(session, uscc, policy.id))
            threshold_value = figures.get("total_investment")
            comp = calc.percentage(
                policy,
                Decimal(str(base)),
                threshold_value=None if threshold_value is None else Decimal(str(threshold_value)),
                previously_granted=previously,
            )
        elif policy.kind == "fixed_award":
            item = figures.get("item")
            if not item:
                raise Problem(
                    422, "定额奖励须提供奖励项目 item", errors=[{"field": "figures.item", "message": "缺少奖励项目"}]
                )
            comp = calc.fixed_award(policy, str(item))
        elif policy.kind == "per_person":
            persons = figures.get("persons") or {}
            if not persons:
                raise Problem(
                    422, "按人补贴须提供各类人数 persons", errors=[{"field": "figures.persons", "message": "缺少人数"}]
                )
            comp = calc.per_person(policy, {str(k): int(v) for k, v in persons.items()})
        else:
            raise Problem(
                422,
                "认定奖励由认定事件自动生成,不能申报 (tier rewards come from recognition events)",
                errors=[{"field": "policy_id", "message": "该政策为认定奖励"}],
            )
    except calc.NotApplicable as exc:
        raise Problem(422, f"不适用:{exc}", errors=[{"field": "figures", "message": str(exc)}]) from exc
    if comp.amount > MAX_AMOUNT:
        raise Problem(
            422,
            f"计算金额超过上限 {fmt(MAX_AMOUNT)} 元 (amount out of range)",
            errors=[{"field": "figures", "message": f"计算金额不能超过 {fmt(MAX_AMOUNT)} 元"}],
        )
    row = await _insert(
        session,
        policy,
        comp,
        uscc=uscc,
        region_code=region_code,
        subject=f"project:{project_ref}",
        year=year,
        source="application",
        created_by=principal.sub,
        figures=figures,
    )
    if row is None:
        raise Problem(
            409, f"重复申报:企业 {uscc} 在政策 {policy.id} 下 {year} 年度项目 {project_ref} 已有兑现记录 (duplicate)"
        )
    await record_audit(
        session, backbone, principal, "entitlement.created", "entitlement", str(row.id), after=snapshot(row)
    )
    if row.amount > ZERO:
        await emit(session, backbone, ev.ENTITLEMENT_CREATED, row.uscc, event_payload(row), regioncode=row.region_code)
    return row


async def lock_entitlement(session: AsyncSession, principal: Principal, entitlement_id: uuid.UUID) -> EntitlementRow:
    row = await repo.get_locked(session, entitlement_id)
    if row is None or not principal.covers_region(row.jurisdiction):
        raise Problem(404, "兑现记录不存在或不在您的管辖范围内 (not found)")
    if principal.region != row.jurisdiction:
        raise Problem(
            403, f"仅 {row.jurisdiction} 辖区的工作人员可审批该兑现 (only officials of the policy's jurisdiction)"
        )
    return row


async def approve(
    session: AsyncSession, principal: Principal, row: EntitlementRow, comment: str | None
) -> DisbursementRow:
    if row.status != "pending":
        raise Problem(409, f"当前状态为 {row.status},不能审批 (only pending entitlements can be approved)")
    if row.created_by == principal.sub:
        raise Problem(403, "审批人不能是创建人 (maker-checker: the approver is never the creator)")
    before = snapshot(row)
    await budgets.reserve(session, row.jurisdiction, row.fund, row.year, row.amount, row.id)
    now = datetime.now(UTC)
    row.status, row.decided_by, row.decided_at, row.reason, row.updated_at = (
        "approved",
        principal.sub,
        now,
        comment,
        now,
    )
    did = uuid.uuid4()
    disb = DisbursementRow(
        id=did,
        entitlement_id=row.id,
        uscc=row.uscc,
        region_code=row.region_code,
        jurisdiction=row.jurisdiction,
        fund=row.fund,
        year=row.year,
        amount=row.amount,
        state="pending",
        idempotency_key=f"zjtx-fin-{did}",
        attempts=0,
        next_attempt_at=now,
    )
    session.add(disb)
    await session.flush()
    await record_audit(
        session,
        backbone,
        principal,
        "entitlement.approved",
        "entitlement",
        str(row.id),
        before=before,
        after=snapshot(row),
    )
    await emit(session, backbone, ev.ENTITLEMENT_APPROVED, row.uscc, event_payload(row), regioncode=row.region_code)
    return disb


async def reject(session: AsyncSession, principal: Principal, row: EntitlementRow, reason: str) -> None:
    if row.status != "pending":
        raise Problem(409, f"当前状态为 {row.status},不能驳回 (only pending entitlements can be rejected)")
    if row.created_by == principal.sub:
        raise Problem(403, "审核人不能是创建人 (maker-checker)")
    before = snapshot(row)
    now = datetime.now(UTC)
    row.status, row.decided_by, row.decided_at, row.reason, row.updated_at = "rejected", principal.sub, now, reason, now
    await record_audit(
        session,
        backbone,
        principal,
        "entitlement.rejected",
        "entitlement",
        str(row.id),
        before=before,
        after=snapshot(row),
    )


async def cancel(session: AsyncSession, principal: Principal | None, row: EntitlementRow, reason: str) -> bool:
    """pending → cancelled; approved and not yet sent → cancelled with the reservation released."""
    before = snapshot(row)
    if row.status == "approved":
        disb = await disb_repo.of_entitlement(session, row.id, for_update=True)
        if disb is not None and disb.state not in ("pending", "failed"):
            if principal is None:
                return False
            raise Problem(409, f"拨付指令已发出(状态 {disb.state}),不能取消 (payment in flight)")
        if disb is not None:
            disb.state = "cancelled"
            disb.updated_at = datetime.now(UTC)
        await budget_repo.release(session, row.jurisdiction, row.fund, row.year, row.amount, row.id)
    elif row.status not in ("pending", "nothing_due"):
        if principal is None:
            return False
        raise Problem(409, f"当前状态为 {row.status},不能取消")
    now = datetime.now(UTC)
    row.status, row.reason, row.updated_at = "cancelled", reason, now
    if principal is not None:
        row.decided_by, row.decided_at = principal.sub, now
    await record_audit(
        session,
        backbone,
        principal,
        "entitlement.cancelled",
        "entitlement",
        str(row.id),
        before=before,
        after=snapshot(row),
    )
    return True


async def raise_recovery(session: AsyncSession, row: EntitlementRow, reason: str) -> RecoveryRow | None:
    """A paid entitlement whose title was revoked: open a recovery (追回) for the amount the policy says."""
    policy_row = await policies.get(session, row.policy_id)
    recovery_rule = (policy_row.spec or {}).get("recovery", "full") if policy_row else "full"
    if recovery_rule != "full" or row.status != "paid":
        return None
    rec = await recoveries.insert_once(
        session,
        {
            "entitlement_id": row.id,
            "uscc": row.uscc,
            "region_code": row.region_code,
            "jurisdiction": row.jurisdiction,
            "amount": row.amount,
            "reason": reason,
            "status": "open",
        },
    )
    if rec is None:
        return None
    before = snapshot(row)
    row.status, row.reason, row.updated_at = "recovering", reason, datetime.now(UTC)
    await ledger.post(
        session, "recover", row.jurisdiction, row.fund, row.year, row.amount, entitlement_id=row.id, memo=reason
    )
    await record_audit(
        session, backbone, None, "recovery.raised", "entitlement", str(row.id), before=before, after=snapshot(row)
    )
    await emit(
        session,
        backbone,
        ev.RECOVERY_RAISED,
        row.uscc,
        ev.RecoveryRaised(
            entitlement_id=str(row.id),
            recovery_id=str(rec.id),
            uscc=row.uscc,
            region_code=row.region_code,
            amount=fmt(row.amount),
            reason=reason,
            jurisdiction=row.jurisdiction,
            fund=row.fund,
            year=row.year,
        ),
        regioncode=row.region_code,
    )
    return rec


async def on_revoked(session: AsyncSession, data: ev.TierRevoked) -> list[RecoveryRow]:
    """Unpaid → cancelled (reservation released); paid → recovery; payment in flight → recovered once confirmed."""
    reason = f"称号撤销 ({data.tier}/{data.level or '-'}):{data.ground or '未注明'}"
    recoveries: list[RecoveryRow] = []
    for row in await repo.by_recognition(session, data.recognition_id, data.uscc):
        if row.status in ("pending", "approved", "nothing_due"):
            if not await cancel(session, None, row, reason):
                row.revocation_reason = reason  # the instruction is already at the gateway
            continue
        if row.status == "paid" and (rec := await raise_recovery(session, row, reason)) is not None:
            recoveries.append(rec)
    return recoveries


async def on_expired(session: AsyncSession, data: ev.TierExpired) -> int:
    """Expired: nothing more to pay; unapproved entitlements of that recognition are cancelled."""
    n = 0
    for row in await repo.by_recognition(session, data.recognition_id, data.uscc):
        if row.status in ("pending", "nothing_due"):
            await cancel(session, None, row, f"称号到期 ({data.expired_on or '-'}),未审批的兑现取消")
            n += 1
    return n


async def mark_repaid(session: AsyncSession, principal: Principal, rec: RecoveryRow) -> None:
    if rec.status != "open":
        raise Problem(409, "该追回已结清 (already repaid)")
    row = await repo.get(session, rec.entitlement_id, for_update=True)
    assert row is not None
    before = snapshot(row)
    await budget_repo.repaid(session, row.jurisdiction, row.fund, row.year, rec.amount, row.id)
    now = datetime.now(UTC)
    rec.status, rec.repaid_at = "repaid", now
    row.status, row.updated_at = "recovered", now
    await record_audit(
        session, backbone, principal, "recovery.repaid", "entitlement", str(row.id), before=before, after=snapshot(row)
    )


# ------------------------------------------------------------------ what the API reads and decides


def visible(principal: Principal, e: EntitlementRow) -> bool:
    if principal.role == Role.ENTERPRISE:
        return principal.uscc == e.uscc
    return principal.covers_region(e.jurisdiction)


async def listing(
    session: AsyncSession, principal: Principal, filters: dict[str, Any], limit: int
) -> list[tuple[EntitlementRow, DisbursementRow | None]]:
    uscc_scope: str | None = None
    territory: str | None = None
    if principal.role == Role.ENTERPRISE:
        uscc_scope = principal.uscc
    elif principal.role != Role.ADMIN:
        territory = principal.region
    rows = await repo.listing(session, uscc_scope=uscc_scope, territory=territory, filters=filters, limit=limit)
    rows = [e for e in rows if visible(principal, e)]
    disb = await disb_repo.of_entitlements(session, (e.id for e in rows))
    return [(e, disb.get(e.id)) for e in rows]


async def get_visible(
    session: AsyncSession, principal: Principal, entitlement_id: uuid.UUID
) -> tuple[EntitlementRow, DisbursementRow | None]:
    row = await repo.get(session, entitlement_id)
    if row is None or not visible(principal, row):
        raise not_found("兑现记录")
    return row, await disb_repo.of_entitlement(session, row.id)


async def of_enterprise(
    session: AsyncSession, principal: Principal, uscc: str
) -> list[tuple[EntitlementRow, DisbursementRow | None]]:
    """The enterprise's entitlements the caller may see, with their disbursements. 404 for another enterprise, and
    for an official when none of the enterprise's entitlements lies in its territory (finance keeps no enterprise
    register: that is all it knows of where the enterprise is). Through the session: the reference the route's
    :func:`of_enterprise_json` is held equal to (tests/finance/test_hot_reads.py)."""
    if principal.role == Role.ENTERPRISE and principal.uscc != uscc:
        raise not_found("企业")
    found = await repo.of_enterprise(session, uscc)
    if principal.is_official and not any(principal.covers_region(e.region_code) for e in found):
        raise not_found("企业")
    rows = [e for e in found if visible(principal, e)]
    return [(e, await disb_repo.of_entitlement(session, e.id)) for e in rows]


async def of_enterprise_json(pool: ReadPool, principal: Principal, uscc: str) -> str:
    """list[EntitlementOut]'s JSON (as :func:`of_enterprise`), written by PostgreSQL without a session."""
    body = await entitlements_json(pool, scope_of(principal), uscc)
    if body is None:
        raise not_found("企业")
    return body


async def apply(
    session: AsyncSession,
    principal: Principal,
    *,
    uscc: str,
    region_code: str,
    policy_id: str,
    project_ref: str,
    year: int,
    figures: dict[str, Any],
) -> EntitlementRow:
    """A project application under a published policy covering the enterprise's region."""
    if principal.role == Role.ENTERPRISE and principal.uscc != uscc:
        raise Problem(403, "企业只能为本企业申报 (enterprises apply only for themselves)")
    if principal.is_official and not principal.covers_region(region_code):
        raise Problem(404, "企业所在地不在您的管辖范围内 (not found)")
    prow = await policies.get(session, policy_id)
    if prow is None or prow.status != "published":
        raise not_found("政策")
    if prow.jurisdiction not in coverage(region_code):
        raise Problem(
            422,
            f"政策 {prow.id} 不覆盖企业所在地 {region_code}",
            errors=[{"field": "policy_id", "message": "政策辖区不覆盖企业所在地"}],
        )
    return await create_application(
        session,
        principal,
        policies.policy_from_row(prow),
        uscc=uscc,
        region_code=region_code,
        project_ref=project_ref,
        year=year,
        figures=figures,
    )


async def approve_by_id(
    session: AsyncSession, principal: Principal, entitlement_id: uuid.UUID, comment: str | None
) -> tuple[EntitlementRow, DisbursementRow]:
    row = await lock_entitlement(session, principal, entitlement_id)
    return row, await approve(session, principal, row, comment)


async def reject_by_id(
    session: AsyncSession, principal: Principal, entitlement_id: uuid.UUID, reason: str
) -> EntitlementRow:
    row = await lock_entitlement(session, principal, entitlement_id)
    await reject(session, principal, row, reason)
    return row


async def cancel_by_id(
    session: AsyncSession, principal: Principal, entitlement_id: uuid.UUID, reason: str
) -> tuple[EntitlementRow, DisbursementRow | None]:
    row = await lock_entitlement(session, principal, entitlement_id)
    await cancel(session, principal, row, reason)
    return row, await disb_repo.of_entitlement(session, row.id)


async def recoveries_visible(session: AsyncSession, principal: Principal, status: str | None) -> list[RecoveryRow]:
    rows = await recoveries.listing(session, status=status)
    if principal.role == Role.ENTERPRISE:
        return [r for r in rows if r.uscc == principal.uscc]
    return [r for r in rows if principal.covers_region(r.jurisdiction)]


async def repaid_by_id(session: AsyncSession, principal: Principal, recovery_id: uuid.UUID) -> RecoveryRow:
    rec = await recoveries.get(session, recovery_id, for_update=True)
    if rec is None or not principal.covers_region(rec.jurisdiction):
        raise not_found("追回")
    await mark_repaid(session, principal, rec)
    return rec
