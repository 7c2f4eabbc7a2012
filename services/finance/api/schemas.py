"""API models: money as decimal strings with 2 places, Chinese field descriptions, unknown fields refused."""

from __future__ import annotations

import datetime as dt
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.finance.db.models import (
    BudgetChangeRow,
    BudgetRow,
    DisbursementRow,
    EntitlementRow,
    PolicyRow,
    ReconciliationRow,
    RecoveryRow,
)
from services.finance.domain.money import MAX_AMOUNT, fmt

# Yuan with at most 2 decimals that fit the NUMERIC(16,2) columns.
Money = Annotated[Decimal, Field(ge=0, le=MAX_AMOUNT, decimal_places=2)]
Persons = Annotated[int, Field(ge=0, le=1_000_000)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PolicyIn(Strict):
    id: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{3,64}$", description="政策编号(可选,缺省自动生成)")
    name: str = Field(min_length=2, max_length=300, description="政策名称")
    jurisdiction: str = Field(pattern=r"^\d{6}$", description="发布辖区行政区划代码 (省/市/县)")
    fund: str = Field(min_length=1, max_length=60, description="资金渠道,如 sme_development")
    kind: Literal["tier_reward", "percentage", "fixed_award", "per_person"] = Field(description="政策类型")
    effective_from: date = Field(description="生效日期")
    effective_to: date | None = Field(None, description="失效日期(含)")
    document: str = Field("", max_length=2000, description="依据文件及条款")
    tiers: dict[str, Money] | None = Field(None, description="认定奖励:tier:level → 金额(元)")
    stacking: Literal["highest_only", "cumulative"] = Field(
        "highest_only", description="叠加规则:highest_only=从高不重复"
    )
    upgrade: Literal["pay_difference", "nothing"] = Field("pay_difference", description="升级认定:补差额或不再奖励")
    migrated_in: Literal["as_new", "excluded"] = Field("as_new", description="整体迁入企业是否参照新认定")
    recovery: Literal["full", "none"] = Field("full", description="称号撤销后是否全额追回")
    rate: Decimal | None = Field(None, gt=0, le=1, description="比例补助比例,如 0.20")
    cap: Money | None = Field(None, ge=0, description="封顶金额(元)")
    cap_scope: Literal["project", "enterprise"] = Field("project", description="封顶范围:单个项目或单家企业")
    threshold: Money | None = Field(None, ge=0, description="门槛金额(元)")
    threshold_comparison: Literal["gt", "ge"] = Field("gt", description="门槛比较:gt=高于,ge=不低于")
    base_label: str = Field("核定金额", max_length=60, description="计算基数名称")
    items: dict[str, Money] | None = Field(None, description="定额奖励/按人补贴:项目 → 金额(元)")
    amounts_configured: bool = Field(False, description="金额是否为文件未载明的配置值")
    note: str = Field("", max_length=2000, description="备注")


class PolicyOut(BaseModel):
    id: str
    name: str
    jurisdiction: str
    fund: str
    kind: str
    status: str = Field(description="draft 草稿 / published 已发布 / retired 已废止")
    effective_from: date
    effective_to: date | None
    document: str
    spec: dict[str, Any] = Field(description="规则参数(金额为两位小数字符串)")
    version: int

    @classmethod
    def of(cls, r: PolicyRow) -> PolicyOut:
        return cls(
            id=r.id,
            name=r.name,
            jurisdiction=r.jurisdiction,
            fund=r.fund,
            kind=r.kind,
            status=r.status,
            effective_from=r.effective_from,
            effective_to=r.effective_to,
            document=r.document,
            spec=r.spec,
            version=r.version,
        )


class BudgetIn(Strict):
    jurisdiction: str = Field(pattern=r"^\d{6}$", description="辖区代码")
    fund: str = Field(min_length=1, max_length=60, description="资金渠道")
    year: int = Field(ge=2000, le=2100, description="预算年度")
    amount: Money = Field(gt=0, max_digits=16, decimal_places=2, description="本次下达金额(元)")


class BudgetOut(BaseModel):
    id: str
    jurisdiction: str
    fund: str
    year: int
    total: str = Field(description="预算总额")
    reserved: str = Field(description="已预留(已审批未拨付)")
    spent: str = Field(description="已拨付净额")
    available: str = Field(description="可用余额")

    @classmethod
    def of(cls, b: BudgetRow) -> BudgetOut:
        return cls(
            id=str(b.id),
            jurisdiction=b.jurisdiction,
            fund=b.fund,
            year=b.year,
            total=fmt(b.total),
            reserved=fmt(b.reserved),
            spent=fmt(b.spent),
            available=fmt(b.total - b.reserved - b.spent),
        )


class BudgetChangeOut(BaseModel):
    id: str
    jurisdiction: str
    fund: str
    year: int
    amount: str = Field(description="本次下达/追加金额(元)")
    status: str = Field(description="pending 待复核 / approved 已复核并下达 / rejected 已驳回")
    requested_by: str = Field(description="申请人")
    requested_at: datetime
    decided_by: str | None = Field(description="复核人(须为本辖区另一名工作人员)")
    decided_at: datetime | None
    reason: str | None
    budget: BudgetOut | None = Field(None, description="该预算当前状态")

    @classmethod
    def of(cls, c: BudgetChangeRow, b: BudgetRow | None = None) -> BudgetChangeOut:
        return cls(
            id=str(c.id),
            jurisdiction=c.jurisdiction,
            fund=c.fund,
            year=c.year,
            amount=fmt(c.amount),
            status=c.status,
            requested_by=c.requested_by,
            requested_at=c.requested_at,
            decided_by=c.decided_by,
            decided_at=c.decided_at,
            reason=c.reason,
            budget=BudgetOut.of(b) if b is not None else None,
        )


class Figures(Strict):
    approved_amount: Money | None = Field(
        None, ge=0, max_digits=16, decimal_places=2, description="核定金额(投资额/采购额/研发投入)"
    )
    total_investment: Money | None = Field(
        None, ge=0, max_digits=16, decimal_places=2, description="投入总额(门槛判断用,缺省取核定金额)"
    )
    item: str | None = Field(None, max_length=100, description="定额奖励项目,如 省级未来工厂")
    persons: dict[str, Persons] | None = Field(None, description="按人补贴:类别 → 人数")


class ApplicationIn(Strict):
    uscc: str = Field(pattern=r"^[0-9A-HJ-NPQRTUWXY]{18}$", description="统一社会信用代码 (申报主体或培训机构)")
    region_code: str = Field(pattern=r"^\d{6}$", description="企业所在行政区划代码")
    policy_id: str = Field(description="政策编号")
    project_ref: str = Field(min_length=1, max_length=100, description="项目编号(同一政策同一年度内唯一)")
    year: int = Field(ge=2000, le=2100, description="年度")
    figures: Figures = Field(description="支撑数据")


class DecisionIn(Strict):
    comment: str | None = Field(None, max_length=2000, description="审批意见")


class ReasonIn(Strict):
    reason: str = Field(min_length=1, max_length=2000, description="理由")


class DisbursementOut(BaseModel):
    id: str
    entitlement_id: str
    uscc: str
    jurisdiction: str
    amount: str
    state: str = Field(description="pending 待发送 / sent 已发送 / paid 已到账 / failed 失败 / cancelled 已取消")
    attempts: int
    idempotency_key: str
    last_error: str | None
    gateway_payment_id: str | None
    paid_at: datetime | None

    @classmethod
    def of(cls, d: DisbursementRow) -> DisbursementOut:
        return cls(
            id=str(d.id),
            entitlement_id=str(d.entitlement_id),
            uscc=d.uscc,
            jurisdiction=d.jurisdiction,
            amount=fmt(d.amount),
            state=d.state,
            attempts=d.attempts,
            idempotency_key=d.idempotency_key,
            last_error=d.last_error,
            gateway_payment_id=d.gateway_payment_id,
            paid_at=d.paid_at,
        )


class EntitlementOut(BaseModel):
    id: str
    uscc: str
    region_code: str
    jurisdiction: str = Field(description="出资辖区")
    policy_id: str
    policy_name: str
    kind: str
    fund: str
    subject: str = Field(description="认定称号或项目")
    year: int
    amount: str = Field(description="应兑现金额(元,两位小数)")
    status: str = Field(
        description=(
            "pending 待审批 / nothing_due 无需兑现 / approved 已审批 / paid 已拨付 / rejected / cancelled"
            " / recovering 追回中 / recovered 已追回"
        )
    )
    explanation: dict[str, Any] = Field(description="计算过程:政策、规则、基数、比例、封顶、扣减")
    source: str
    created_by: str
    decided_by: str | None
    decided_at: datetime | None
    reason: str | None
    disbursement: DisbursementOut | None = None

    @classmethod
    def of(cls, e: EntitlementRow, d: DisbursementRow | None = None) -> EntitlementOut:
        return cls(
            id=str(e.id),
            uscc=e.uscc,
            region_code=e.region_code,
            jurisdiction=e.jurisdiction,
            policy_id=e.policy_id,
            policy_name=e.policy_name,
            kind=e.kind,
            fund=e.fund,
            subject=e.subject,
            year=e.year,
            amount=fmt(e.amount),
            status=e.status,
            explanation=e.explanation,
            source=e.source,
            created_by=e.created_by,
            decided_by=e.decided_by,
            decided_at=e.decided_at,
            reason=e.reason,
            disbursement=DisbursementOut.of(d) if d is not None else None,
        )


class RecoveryOut(BaseModel):
    id: str
    entitlement_id: str
    uscc: str
    jurisdiction: str
    amount: str
    reason: str
    status: str = Field(description="open 待追回 / repaid 已追回")
    repaid_at: datetime | None

    @classmethod
    def of(cls, r: RecoveryRow) -> RecoveryOut:
        return cls(
            id=str(r.id),
            entitlement_id=str(r.entitlement_id),
            uscc=r.uscc,
            jurisdiction=r.jurisdiction,
            amount=fmt(r.amount),
            reason=r.reason,
            status=r.status,
            repaid_at=r.repaid_at,
        )


class ReconciliationIn(Strict):
    date: dt.date = Field(description="对账日期 (UTC)")


class LedgerLineOut(BaseModel):
    id: int
    txn_id: str = Field(description="分录号(同一笔业务的两行相同)")
    movement: str = Field(
        description="allocate 下达 / reserve 预留 / release 释放 / pay 拨付 / recover 追回 / repaid 追回到账"
    )
    fund: str
    year: int
    account: str
    debit: str = Field(description="借方(元)")
    credit: str = Field(description="贷方(元)")
    entitlement_id: str | None
    memo: str
    at: str


class AccountTotalOut(BaseModel):
    debit: str
    credit: str
    balance: str = Field(description="借方 − 贷方")


class FundTotalOut(BaseModel):
    fund: str
    debit: str
    credit: str
    balanced: bool = Field(description="借贷平衡")
    accounts: dict[str, AccountTotalOut]


class LedgerOut(BaseModel):
    jurisdiction: str
    fund: str | None
    year: int | None
    lines: list[LedgerLineOut]
    totals: list[FundTotalOut] = Field(description="各资金渠道、各科目合计")
    balanced: bool


class MismatchOut(BaseModel):
    key: str = Field(description="拨付指令幂等键")
    kind: str = Field(description="missing_in_ledger / amount_mismatch / missing_at_gateway")
    message: str
    gateway_amount: str | None
    ledger_amount: str | None


class ReconciliationOut(BaseModel):
    id: str
    date: dt.date = Field(description="对账日期 (UTC)")
    jurisdiction: str
    matched: int = Field(description="一致笔数")
    mismatches: list[MismatchOut]

    @classmethod
    def of(cls, r: ReconciliationRow) -> ReconciliationOut:
        return cls(
            id=str(r.id),
            date=r.on_date,
            jurisdiction=r.jurisdiction,
            matched=r.matched,
            mismatches=[MismatchOut.model_validate(m) for m in r.mismatches],
        )


class ReconciliationRunOut(ReconciliationOut):
    ok: bool = Field(description="无差异")
