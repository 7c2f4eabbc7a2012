"""The monitor's report shapes and the pure arithmetic behind them (attainment ratio, money, forecast order)."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, Field

Q2 = Decimal("0.01")


def yuan(amount: Decimal | int | None) -> str:
    """Money as a 'yuan with 2 decimals' string."""
    return f"{Decimal(amount or 0).quantize(Q2)}"


def ratio(actual: Decimal | int, target: Decimal | int | None) -> float | None:
    """actual / target, 4 decimals; None without a (positive) target."""
    if not target:
        return None
    return float((Decimal(actual) / Decimal(target)).quantize(Decimal("0.0001")))


class RegionRef(BaseModel):
    code: str = Field(description="行政区划代码 (GB/T 2260)")
    name: str = Field(description="区划名称")
    level: str = Field(description="province 省 / city 市 / county 县(区)")


class AttainmentRow(BaseModel):
    region: RegionRef
    tier: str
    tier_name: str = Field(description="梯度名称")
    target: int | None = Field(description="目标数 (未下达则为空)")
    actual: int = Field(description="实际数: 截至统计日的有效认定数 (或培育库在库数)")
    ratio: float | None = Field(description="达成率 = 实际 / 目标")


class Attainment(BaseModel):
    region: RegionRef
    year: int
    as_of: str
    measure: str = Field(description="recognised 有效认定 / pool 培育库在库")
    breadcrumbs: list[RegionRef]
    children: list[RegionRef]
    total: list[AttainmentRow] = Field(description="本区划合计,按梯度")
    rows: list[AttainmentRow] = Field(description="下级区划,按梯度")


class FunnelRow(BaseModel):
    region: RegionRef
    pool: int = Field(description="培育库在库企业")
    applied: int = Field(description="申报数")
    stages: dict[str, int] = Field(
        description="申报所处阶段: submitted/county/city/province/publicity/recognised/rejected")
    recognised: int = Field(description="当年新认定")


class Funnel(BaseModel):
    region: RegionRef
    year: int
    tier: str | None
    total: FunnelRow
    rows: list[FunnelRow]


class MoneyRow(BaseModel):
    region: RegionRef
    entitlements: int = Field(description="奖补笔数")
    created: str = Field(description="应奖补金额 (元)")
    approved: str = Field(description="已审批金额 (元)")
    paid: str = Field(description="已拨付金额 (元)")
    recovered: str = Field(description="已追回金额 (元)")
    budget: str | None = Field(description="预算 (元;财政未发布预算事件则为空)")
    spend_ratio: float | None = Field(description="支出率 = (拨付 − 追回) / 预算")


class Money(BaseModel):
    region: RegionRef
    year: int
    total: MoneyRow
    rows: list[MoneyRow]


class RecognitionRow(BaseModel):
    tier: str
    tier_name: str
    current: int = Field(description="有效")
    new: int = Field(description="当年新认定")
    expired: int = Field(description="已到期")
    revoked: int = Field(description="已撤销")


class Recognitions(BaseModel):
    region: RegionRef
    year: int
    rows: list[RecognitionRow]


class YearRow(BaseModel):
    year: int
    recognised: int = Field(description="当年新认定")
    pool: int = Field(description="培育库在库")
    applied: int = Field(description="申报数")
    paid: str = Field(description="已拨付金额 (元)")


class YearOnYear(BaseModel):
    region: RegionRef
    rows: list[YearRow]


class Candidate(BaseModel):
    uscc: str
    name: str | None
    unmet: int | None = Field(description="未满足条件数 (评价事件提供时)")
    yuan_gap: str | None = Field(description="达标尚差金额 (元;评价事件提供时)")
    score: str | None = Field(description="评价得分")


class ForecastRow(BaseModel):
    region: RegionRef
    tier: str
    tier_name: str
    target: int | None
    actual: int
    lacking: int | None = Field(description="距目标尚缺 (无目标为空)")
    candidates: list[Candidate] = Field(description="培育库中最接近达标的企业,最近的在前")


class Forecast(BaseModel):
    region: RegionRef
    year: int
    rows: list[ForecastRow]


class CommissionerLoad(BaseModel):
    commissioner_id: str
    name: str | None
    enterprises: int


class NoticeKindRow(BaseModel):
    kind: str = Field(description="通知类别代码")
    kind_name: str = Field(description="通知类别")
    tier: str | None
    tier_name: str | None
    to_enterprises: int = Field(description="发给企业")
    to_commissioners: int = Field(description="发给服务专员")
    to_officials: int = Field(description="发给主管部门")
    sent_out: int = Field(description="另经短信/邮件发送")
    total: int


class NoticeRegionRow(BaseModel):
    region: RegionRef
    total: int = Field(description="通知总数")
    to_enterprises: int = Field(description="发给企业")
    gap_advice: int = Field(description="差距提示 (发给企业)")


class CommissionerNotices(BaseModel):
    commissioner_id: str
    notices: int = Field(description="收到的通知数")


class Notices(BaseModel):
    region: RegionRef
    year: int
    total: NoticeRegionRow
    rows: list[NoticeRegionRow] = Field(description="下级区划")
    by_kind: list[NoticeKindRow]
    commissioners: list[CommissionerNotices]


def nearness(unmet: int | None, yuan_gap: Decimal | None, score: Decimal | None) -> tuple[int, int, Decimal, Decimal]:
    """Sort key, nearest to qualifying first, as the gap advice ranks a tier: a result that money alone would make
    eligible (a yuan gap) before one with other unmet conditions, then fewest unmet conditions, smallest yuan gap,
    highest score."""
    big = Decimal("1e15")
    return (0 if yuan_gap is not None else 1, unmet if unmet is not None else 10**6,
            yuan_gap if yuan_gap is not None else big, -(score if score is not None else Decimal(0)))
