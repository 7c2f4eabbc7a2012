"""HTTP API of the finance service under /api/v1."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Header, Query, Request
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.finance import entitlements as ents
from services.finance import payments, store
from services.finance.api.common import Applicant, Official, Reader, idempotent
from services.finance.api.schemas import (
    ApplicationIn,
    BudgetIn,
    BudgetOut,
    DecisionIn,
    DisbursementOut,
    EntitlementOut,
    PolicyIn,
    PolicyOut,
    ReasonIn,
    ReconciliationIn,
    RecoveryOut,
)
from services.finance.db.models import (
    BudgetRow,
    DisbursementRow,
    EntitlementRow,
    LedgerLine,
    PolicyRow,
    ReconciliationRow,
    RecoveryRow,
    backbone,
)
from services.finance.domain.money import ZERO, fmt, q
from shared.audit import record_audit
from shared.auth import Principal, Role
from shared.deps import PrincipalDep, RuntimeDep, SessionDep
from shared.problems import Problem, not_found

IdemKey = Annotated[str | None, Header(alias="Idempotency-Key", description="幂等键:重试返回首次结果")]

policies = APIRouter(prefix="/api/v1/policies", tags=["policies 奖补政策"])
budgets = APIRouter(prefix="/api/v1/budgets", tags=["budgets 预算"])
entitlements = APIRouter(prefix="/api/v1/entitlements", tags=["entitlements 兑现"])
enterprises = APIRouter(prefix="/api/v1/enterprises", tags=["entitlements 兑现"])
disbursements = APIRouter(prefix="/api/v1/disbursements", tags=["disbursements 拨付"])
recoveries = APIRouter(prefix="/api/v1/recoveries", tags=["recoveries 追回"])
ledger = APIRouter(prefix="/api/v1/ledger", tags=["ledger 账本"])
reconciliations = APIRouter(prefix="/api/v1/reconciliations", tags=["reconciliations 对账"])


def _manage(principal: Principal, jurisdiction: str) -> None:
    if not principal.covers_region(jurisdiction):
        raise Problem(404, f"辖区 {jurisdiction} 不在您的管辖范围内 (not found)")


# ------------------------------------------------------------------ policies


def _drafts_visible(principal: Principal, jurisdiction: str) -> bool:
    return principal.role == Role.ADMIN or (principal.is_official and principal.covers_region(jurisdiction))


def _validate_policy(body: PolicyIn) -> None:
    if body.effective_to and body.effective_to < body.effective_from:
        raise Problem(422, "失效日期早于生效日期", errors=[{"field": "effective_to", "message": "须不早于生效日期"}])
    if body.kind == "tier_reward" and not body.tiers:
        raise Problem(422, "认定奖励须配置 tiers", errors=[{"field": "tiers", "message": "缺少称号金额"}])
    if body.kind == "percentage" and body.rate is None:
        raise Problem(422, "比例补助须配置 rate", errors=[{"field": "rate", "message": "缺少比例"}])
    if body.kind in ("fixed_award", "per_person") and not body.items:
        raise Problem(422, "定额奖励/按人补贴须配置 items", errors=[{"field": "items", "message": "缺少项目金额"}])


@policies.get("", response_model=list[PolicyOut], summary="政策列表")
async def list_policies(
    session: SessionDep,
    principal: PrincipalDep,
    jurisdiction: str | None = None,
    kind: str | None = None,
    status: str | None = None,
) -> list[PolicyOut]:
    stmt = select(PolicyRow).order_by(PolicyRow.jurisdiction, PolicyRow.id)
    if jurisdiction:
        stmt = stmt.where(PolicyRow.jurisdiction == jurisdiction)
    if kind:
        stmt = stmt.where(PolicyRow.kind == kind)
    if status:
        stmt = stmt.where(PolicyRow.status == status)
    rows = (await session.execute(stmt)).scalars()
    # Published policies are public; drafts only for the officials of their jurisdiction.
    return [PolicyOut.of(r) for r in rows if r.status == "published" or _drafts_visible(principal, r.jurisdiction)]


@policies.get("/{policy_id}", response_model=PolicyOut, summary="政策详情")
async def get_policy(policy_id: str, session: SessionDep, principal: PrincipalDep) -> PolicyOut:
    row = await session.get(PolicyRow, policy_id)
    if row is None or (row.status != "published" and not _drafts_visible(principal, row.jurisdiction)):
        raise not_found("政策")
    return PolicyOut.of(row)


@policies.post("", response_model=PolicyOut, status_code=201, summary="新建政策草稿(本辖区工作人员)")
async def create_policy(body: PolicyIn, session: SessionDep, principal: Official) -> PolicyOut:
    _manage(principal, body.jurisdiction)
    _validate_policy(body)
    data = body.model_dump()
    data["id"] = body.id or f"{body.jurisdiction}-{uuid.uuid4().hex[:10]}"
    async with session.begin():
        if await session.get(PolicyRow, data["id"]) is not None:
            raise Problem(409, f"政策编号 {data['id']} 已存在")
        row = PolicyRow(
            id=data["id"],
            name=body.name,
            jurisdiction=body.jurisdiction,
            fund=body.fund,
            kind=body.kind,
            status="draft",
            effective_from=body.effective_from,
            effective_to=body.effective_to,
            document=body.document,
            spec=store.spec_of(data),
            version=1,
            created_by=principal.sub,
        )
        session.add(row)
        await session.flush()
        await record_audit(
            session,
            backbone,
            principal,
            "policy.created",
            "policy",
            row.id,
            after=PolicyOut.of(row).model_dump(mode="json"),
        )
    return PolicyOut.of(row)


@policies.put("/{policy_id}", response_model=PolicyOut, summary="修改政策草稿")
async def update_policy(policy_id: str, body: PolicyIn, session: SessionDep, principal: Official) -> PolicyOut:
    _validate_policy(body)
    async with session.begin():
        row = await session.get(PolicyRow, policy_id, with_for_update=True)
        if row is None or not principal.covers_region(row.jurisdiction):
            raise not_found("政策")
        if body.jurisdiction != row.jurisdiction:
            raise Problem(422, "不能修改政策所属辖区", errors=[{"field": "jurisdiction", "message": "不可修改"}])
        if row.status != "draft":
            raise Problem(409, "已发布的政策不可修改,请新建政策并设置生效日期 (published policies are immutable)")
        before = PolicyOut.of(row).model_dump(mode="json")
        data = body.model_dump()
        row.name, row.fund, row.kind = body.name, body.fund, body.kind
        row.effective_from, row.effective_to, row.document = body.effective_from, body.effective_to, body.document
        row.spec, row.version, row.updated_at = store.spec_of(data), row.version + 1, datetime.now(UTC)
        await record_audit(
            session,
            backbone,
            principal,
            "policy.updated",
            "policy",
            row.id,
            before=before,
            after=PolicyOut.of(row).model_dump(mode="json"),
        )
    return PolicyOut.of(row)


@policies.post("/{policy_id}/publish", response_model=PolicyOut, summary="发布政策")
async def publish_policy(policy_id: str, session: SessionDep, principal: Official) -> PolicyOut:
    async with session.begin():
        row = await session.get(PolicyRow, policy_id, with_for_update=True)
        if row is None or not principal.covers_region(row.jurisdiction):
            raise not_found("政策")
        if row.status != "draft":
            raise Problem(409, f"政策状态为 {row.status},不能发布")
        row.status, row.published_at, row.updated_at = "published", datetime.now(UTC), datetime.now(UTC)
        await record_audit(
            session, backbone, principal, "policy.published", "policy", row.id, after={"status": "published"}
        )
        await store.emit_policy_published(session, row)
    return PolicyOut.of(row)


# ------------------------------------------------------------------ budgets


@budgets.get("", response_model=list[BudgetOut], summary="预算列表(本辖区)")
async def list_budgets(
    session: SessionDep,
    principal: Official,
    jurisdiction: str | None = None,
    fund: str | None = None,
    year: Annotated[int | None, Query(ge=2000, le=2100, description="年度")] = None,
) -> list[BudgetOut]:
    stmt = select(BudgetRow).order_by(BudgetRow.jurisdiction, BudgetRow.fund, BudgetRow.year)
    if jurisdiction:
        stmt = stmt.where(BudgetRow.jurisdiction == jurisdiction)
    if fund:
        stmt = stmt.where(BudgetRow.fund == fund)
    if year:
        stmt = stmt.where(BudgetRow.year == year)
    return [BudgetOut.of(b) for b in (await session.execute(stmt)).scalars() if principal.covers_region(b.jurisdiction)]


@budgets.post("", response_model=BudgetOut, status_code=201, summary="下达预算(新建或追加)")
async def allocate_budget(
    body: BudgetIn, request: Request, session: SessionDep, principal: Official, idempotency_key: IdemKey = None
) -> Any:
    _manage(principal, body.jurisdiction)

    async def work() -> tuple[int, Any]:
        row = await store.allocate(
            session, body.jurisdiction, body.fund, body.year, body.amount, memo=f"预算下达 by {principal.sub}"
        )
        out = BudgetOut.of(row)
        await record_audit(
            session,
            backbone,
            principal,
            "budget.allocated",
            "budget",
            out.id,
            after={"amount": fmt(body.amount), "total": out.total},
        )
        return 201, out.model_dump(mode="json")

    return await idempotent(session, principal, request, idempotency_key, body.model_dump(mode="json"), work)


# ------------------------------------------------------------------ entitlements


async def _disb(session: AsyncSession, eid: uuid.UUID) -> DisbursementRow | None:
    return (
        await session.execute(select(DisbursementRow).where(DisbursementRow.entitlement_id == eid))
    ).scalar_one_or_none()


def _visible(principal: Principal, e: EntitlementRow) -> bool:
    if principal.role == Role.ENTERPRISE:
        return principal.uscc == e.uscc
    return principal.covers_region(e.jurisdiction)


@entitlements.get("", response_model=list[EntitlementOut], summary="兑现列表(官员:本辖区出资;企业:本企业)")
async def list_entitlements(
    session: SessionDep,
    principal: Reader,
    status: str | None = None,
    uscc: str | None = None,
    jurisdiction: str | None = None,
    year: Annotated[int | None, Query(ge=2000, le=2100, description="年度")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[EntitlementOut]:
    stmt = select(EntitlementRow).order_by(EntitlementRow.created_at.desc())
    if principal.role == Role.ENTERPRISE:
        stmt = stmt.where(EntitlementRow.uscc == principal.uscc)
    elif principal.role != Role.ADMIN:
        level = principal.level
        prefix = (
            principal.region[:2]
            if level == "province"
            else principal.region[:4]
            if level == "city"
            else principal.region
        )
        stmt = stmt.where(EntitlementRow.jurisdiction.startswith(prefix))
    for col, v in (("status", status), ("uscc", uscc), ("jurisdiction", jurisdiction), ("year", year)):
        if v is not None:
            stmt = stmt.where(getattr(EntitlementRow, col) == v)
    rows = [e for e in (await session.execute(stmt.limit(limit))).scalars() if _visible(principal, e)]
    disb = {}
    if rows:
        disb = {
            d.entitlement_id: d
            for d in (
                await session.execute(
                    select(DisbursementRow).where(DisbursementRow.entitlement_id.in_([e.id for e in rows]))
                )
            ).scalars()
        }
    return [EntitlementOut.of(e, disb.get(e.id)) for e in rows]


@entitlements.get("/{entitlement_id}", response_model=EntitlementOut, summary="兑现详情(含计算过程)")
async def get_entitlement(entitlement_id: uuid.UUID, session: SessionDep, principal: Reader) -> EntitlementOut:
    row = await session.get(EntitlementRow, entitlement_id)
    if row is None or not _visible(principal, row):
        raise not_found("兑现记录")
    return EntitlementOut.of(row, await _disb(session, row.id))


@entitlements.post(
    "/applications", response_model=EntitlementOut, status_code=201, summary="项目类补助申报(投资、采购、奖项、培训)"
)
async def apply(
    body: ApplicationIn, request: Request, session: SessionDep, principal: Applicant, idempotency_key: IdemKey = None
) -> Any:
    if principal.role == Role.ENTERPRISE and principal.uscc != body.uscc:
        raise Problem(403, "企业只能为本企业申报 (enterprises apply only for themselves)")
    if principal.is_official and not principal.covers_region(body.region_code):
        raise Problem(404, "企业所在地不在您的管辖范围内 (not found)")

    async def work() -> tuple[int, Any]:
        prow = await session.get(PolicyRow, body.policy_id)
        if prow is None or prow.status != "published":
            raise not_found("政策")
        if prow.jurisdiction not in store.coverage(body.region_code):
            raise Problem(
                422,
                f"政策 {prow.id} 不覆盖企业所在地 {body.region_code}",
                errors=[{"field": "policy_id", "message": "政策辖区不覆盖企业所在地"}],
            )
        figures = body.figures.model_dump(mode="json", exclude_none=True)
        row = await ents.create_application(
            session,
            principal,
            store.policy_from_row(prow),
            uscc=body.uscc,
            region_code=body.region_code,
            project_ref=body.project_ref,
            year=body.year,
            figures=figures,
        )
        return 201, EntitlementOut.of(row).model_dump(mode="json")

    return await idempotent(session, principal, request, idempotency_key, body.model_dump(mode="json"), work)


@entitlements.post(
    "/{entitlement_id}/approve", response_model=EntitlementOut, summary="审批(预留预算、生成拨付指令;审批人≠创建人)"
)
async def approve(
    entitlement_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: Official,
    body: DecisionIn | None = None,
    idempotency_key: IdemKey = None,
) -> Any:
    raw = body.model_dump(mode="json") if body else {}

    async def work() -> tuple[int, Any]:
        row = await ents.lock_entitlement(session, principal, entitlement_id)
        disb = await ents.approve(session, principal, row, body.comment if body else None)
        return 200, EntitlementOut.of(row, disb).model_dump(mode="json")

    return await idempotent(session, principal, request, idempotency_key, raw, work)


@entitlements.post("/{entitlement_id}/reject", response_model=EntitlementOut, summary="驳回")
async def reject(
    entitlement_id: uuid.UUID,
    body: ReasonIn,
    request: Request,
    session: SessionDep,
    principal: Official,
    idempotency_key: IdemKey = None,
) -> Any:
    async def work() -> tuple[int, Any]:
        row = await ents.lock_entitlement(session, principal, entitlement_id)
        await ents.reject(session, principal, row, body.reason)
        return 200, EntitlementOut.of(row).model_dump(mode="json")

    return await idempotent(session, principal, request, idempotency_key, body.model_dump(mode="json"), work)


@entitlements.post("/{entitlement_id}/cancel", response_model=EntitlementOut, summary="取消(已审批未拨付的释放预算)")
async def cancel(
    entitlement_id: uuid.UUID,
    body: ReasonIn,
    request: Request,
    session: SessionDep,
    principal: Official,
    idempotency_key: IdemKey = None,
) -> Any:
    async def work() -> tuple[int, Any]:
        row = await ents.lock_entitlement(session, principal, entitlement_id)
        await ents.cancel(session, principal, row, body.reason)
        return 200, EntitlementOut.of(row, await _disb(session, row.id)).model_dump(mode="json")

    return await idempotent(session, principal, request, idempotency_key, body.model_dump(mode="json"), work)


@enterprises.get(
    "/{uscc}/entitlements", response_model=list[EntitlementOut], summary="某企业的兑现与拨付(企业仅本企业)"
)
async def enterprise_entitlements(uscc: str, session: SessionDep, principal: Reader) -> list[EntitlementOut]:
    if principal.role == Role.ENTERPRISE and principal.uscc != uscc:
        raise not_found("企业")
    rows = [
        e
        for e in (
            await session.execute(
                select(EntitlementRow).where(EntitlementRow.uscc == uscc).order_by(EntitlementRow.created_at)
            )
        ).scalars()
        if _visible(principal, e)
    ]
    return [EntitlementOut.of(e, await _disb(session, e.id)) for e in rows]


# ------------------------------------------------------------------ disbursements and recoveries


@disbursements.get("", response_model=list[DisbursementOut], summary="拨付指令列表")
async def list_disbursements(session: SessionDep, principal: Reader, state: str | None = None) -> list[DisbursementOut]:
    stmt = select(DisbursementRow).order_by(DisbursementRow.created_at.desc()).limit(1000)
    if state:
        stmt = stmt.where(DisbursementRow.state == state)
    if principal.role == Role.ENTERPRISE:
        stmt = stmt.where(DisbursementRow.uscc == principal.uscc)
        return [DisbursementOut.of(d) for d in (await session.execute(stmt)).scalars()]
    return [
        DisbursementOut.of(d)
        for d in (await session.execute(stmt)).scalars()
        if principal.covers_region(d.jurisdiction)
    ]


@disbursements.post("/{disbursement_id}/retry", response_model=DisbursementOut, summary="失败指令重新发送(同一幂等键)")
async def retry_disbursement(disbursement_id: uuid.UUID, session: SessionDep, principal: Official) -> DisbursementOut:
    async with session.begin():
        d = await session.get(DisbursementRow, disbursement_id, with_for_update=True)
        if d is None or not principal.covers_region(d.jurisdiction):
            raise not_found("拨付指令")
        if d.state != "failed":
            raise Problem(409, f"指令状态为 {d.state},仅失败指令可重试")
        d.state, d.attempts, d.next_attempt_at, d.updated_at = "pending", 0, datetime.now(UTC), datetime.now(UTC)
        await record_audit(session, backbone, principal, "disbursement.retried", "disbursement", str(d.id))
    return DisbursementOut.of(d)


@recoveries.get("", response_model=list[RecoveryOut], summary="追回列表")
async def list_recoveries(session: SessionDep, principal: Reader, status: str | None = None) -> list[RecoveryOut]:
    stmt = select(RecoveryRow).order_by(RecoveryRow.created_at.desc())
    if status:
        stmt = stmt.where(RecoveryRow.status == status)
    rows = (await session.execute(stmt)).scalars()
    if principal.role == Role.ENTERPRISE:
        return [RecoveryOut.of(r) for r in rows if r.uscc == principal.uscc]
    return [RecoveryOut.of(r) for r in rows if principal.covers_region(r.jurisdiction)]


@recoveries.post("/{recovery_id}/repaid", response_model=RecoveryOut, summary="登记追回到账")
async def recovery_repaid(
    recovery_id: uuid.UUID, request: Request, session: SessionDep, principal: Official, idempotency_key: IdemKey = None
) -> Any:
    async def work() -> tuple[int, Any]:
        rec = await session.get(RecoveryRow, recovery_id, with_for_update=True)
        if rec is None or not principal.covers_region(rec.jurisdiction):
            raise not_found("追回")
        await ents.mark_repaid(session, principal, rec)
        return 200, RecoveryOut.of(rec).model_dump(mode="json")

    return await idempotent(session, principal, request, idempotency_key, {}, work)


# ------------------------------------------------------------------ ledger and reconciliation


@ledger.get("", summary="账本明细与各资金渠道合计(借贷平衡)")
async def get_ledger(
    session: SessionDep,
    principal: Official,
    jurisdiction: str | None = None,
    fund: str | None = None,
    year: Annotated[int | None, Query(ge=2000, le=2100, description="年度")] = None,
    limit: Annotated[int, Query(ge=0, le=5000)] = 500,
) -> dict[str, Any]:
    juris = jurisdiction or principal.region
    _manage(principal, juris)
    conds = [LedgerLine.jurisdiction == juris]
    if fund:
        conds.append(LedgerLine.fund == fund)
    if year:
        conds.append(LedgerLine.year == year)
    lines = (await session.execute(select(LedgerLine).where(*conds).order_by(LedgerLine.id).limit(limit))).scalars()
    totals = (
        await session.execute(
            select(LedgerLine.fund, LedgerLine.account, func.sum(LedgerLine.debit), func.sum(LedgerLine.credit))
            .where(*conds)
            .group_by(LedgerLine.fund, LedgerLine.account)
            .order_by(LedgerLine.fund, LedgerLine.account)
        )
    ).all()
    per_fund: dict[str, dict[str, Any]] = {}
    for f, account, dr, cr in totals:
        entry = per_fund.setdefault(f, {"fund": f, "debit": ZERO, "credit": ZERO, "accounts": {}})
        entry["debit"] += dr
        entry["credit"] += cr
        entry["accounts"][account] = {"debit": fmt(dr), "credit": fmt(cr), "balance": fmt(dr - cr)}
    fund_totals = [
        {
            "fund": e["fund"],
            "debit": fmt(e["debit"]),
            "credit": fmt(e["credit"]),
            "balanced": q(e["debit"]) == q(e["credit"]),
            "accounts": e["accounts"],
        }
        for e in per_fund.values()
    ]
    return {
        "jurisdiction": juris,
        "fund": fund,
        "year": year,
        "lines": [
            {
                "id": ln.id,
                "txn_id": str(ln.txn_id),
                "movement": ln.movement,
                "fund": ln.fund,
                "year": ln.year,
                "account": ln.account,
                "debit": fmt(ln.debit),
                "credit": fmt(ln.credit),
                "entitlement_id": str(ln.entitlement_id) if ln.entitlement_id else None,
                "memo": ln.memo,
                "at": ln.at.isoformat(),
            }
            for ln in lines
        ],
        "totals": fund_totals,
        "balanced": all(t["balanced"] for t in fund_totals),
    }


@reconciliations.post("", status_code=201, summary="按日对账:账本 vs 网关对账单")
async def reconcile(
    body: ReconciliationIn, session: SessionDep, principal: Official, runtime: RuntimeDep
) -> dict[str, Any]:
    gateway = payments.GatewayClient(runtime.settings.payment_gateway_url, payments.CONFIG.timeout)
    try:
        async with session.begin():
            matched, mismatches = await payments.reconcile(session, gateway, body.date, principal.covers_region)
            row = ReconciliationRow(
                id=uuid.uuid4(),
                on_date=body.date,
                jurisdiction=principal.region,
                created_by=principal.sub,
                matched=matched,
                mismatches=mismatches,
            )
            session.add(row)
            await record_audit(
                session,
                backbone,
                principal,
                "reconciliation.run",
                "reconciliation",
                str(row.id),
                after={"matched": matched, "mismatches": len(mismatches)},
            )
    except httpx.HTTPError as exc:
        raise Problem(503, f"无法获取网关对账单 (gateway statement unavailable): {exc!r}") from exc
    return {
        "id": str(row.id),
        "date": body.date.isoformat(),
        "jurisdiction": principal.region,
        "matched": matched,
        "mismatches": mismatches,
        "ok": not mismatches,
    }


@reconciliations.get("", summary="对账记录")
async def list_reconciliations(session: SessionDep, principal: Official) -> list[dict[str, Any]]:
    rows = (
        await session.execute(select(ReconciliationRow).order_by(ReconciliationRow.created_at.desc()).limit(100))
    ).scalars()
    return [
        {
            "id": str(r.id),
            "date": r.on_date.isoformat(),
            "jurisdiction": r.jurisdiction,
            "matched": r.matched,
            "mismatches": r.mismatches,
        }
        for r in rows
        if principal.covers_region(r.jurisdiction)
    ]


ALL = [policies, budgets, entitlements, enterprises, disbursements, recoveries, ledger, reconciliations]
