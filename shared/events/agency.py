"""Inbound contracts of the external agencies' feeds (数据贯通共享): 市场监管, 税务 and 信用 send their events to
``zjtx.agency.events`` (key = the enterprise's USCC, CloudEvents ``ce_*`` headers like every zjtx topic).

Agencies are not services, so their contracts live here, in shared: a producer model (``extra="forbid"``) per
event type, a tolerant reader for the consumers (``extra="ignore"``), and an example with Chinese data per type
(``EXAMPLES``; ``examples/agency_producer.py`` sends them). Who applies what:

- 市场监管 (market supervision) → registry: deregistered (status), renamed, legal representative changed, moved
  to another region (its jurisdiction, pools, commissioner and future paying jurisdiction follow);
- 税务 (tax) → registry: annual revenue, R&D expense deduction base and taxes paid become agency-sourced
  indicators of the year (agency precedence), which re-triggers evaluation;
- 信用 (credit) → evaluation: a serious-dishonesty (严重失信) or business-anomaly (经营异常) listing makes the
  enterprise ineligible under every rule set that lists the condition; 严重失信 also revokes its current titles
  (configured grounds); a lifting / removal restores eligibility for new applications, never a revoked title.

``zjtx.agency.listing.recorded.v1`` (the older, generic listing: ``data_fraud``, ``serious_dishonesty``,
``major_accident``, ``abnormal_operation``) keeps working; evaluation maps its ``abnormal_operation`` and
``serious_dishonesty`` listings onto the credit effects above.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field

from shared.auth import Principal, Role
from shared.events.envelope import EventPayload

TOPIC = "zjtx.agency.events"
M = TypeVar("M", bound=BaseModel)

LISTING_RECORDED = "zjtx.agency.listing.recorded.v1"
# 市场监管
DEREGISTERED = "zjtx.agency.enterprise.deregistered.v1"
RENAMED = "zjtx.agency.enterprise.renamed.v1"
MOVED = "zjtx.agency.enterprise.moved.v1"
REPRESENTATIVE_CHANGED = "zjtx.agency.enterprise.representative_changed.v1"
# 税务
TAX_REPORTED = "zjtx.agency.tax.reported.v1"
# 信用
CREDIT_LISTED = "zjtx.agency.credit.listed.v1"
CREDIT_LIFTED = "zjtx.agency.credit.lifted.v1"

MARKET_SUPERVISION = (DEREGISTERED, RENAMED, MOVED, REPRESENTATIVE_CHANGED)
TAX = (TAX_REPORTED,)
CREDIT = (CREDIT_LISTED, CREDIT_LIFTED)
TYPES: tuple[str, ...] = (LISTING_RECORDED, *MARKET_SUPERVISION, *TAX, *CREDIT)

USCC = Annotated[str, Field(pattern=r"^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$",
                            description="统一社会信用代码 (18 位)")]
RegionCode = Annotated[str, Field(pattern=r"^[0-9]{6}$", description="行政区划代码 (GB/T 2260, 6 位)")]
AgencyName = Annotated[str, Field(min_length=2, max_length=100, description="发送部门名称, 如 杭州市市场监督管理局")]
Yuan = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=2, description="金额(元), 两位小数的十进制字符串")]
CreditListing = Literal["serious_dishonesty", "abnormal_operation"]
"""严重失信主体名单 / 经营异常名录"""


class AgencyEvent(EventPayload):
    """Common fields of every agency message: who is concerned, where, and which agency says so."""

    uscc: USCC
    region_code: RegionCode = Field(description="企业所属区划(部门登记的)")
    agency: AgencyName


class ListingRecorded(EventPayload):
    """``zjtx.agency.listing.recorded.v1`` (compatibility): a listing of any kind, with evidence."""

    uscc: USCC
    region_code: RegionCode | None = None
    listing: str = Field(description="data_fraud / serious_dishonesty / major_accident / abnormal_operation")
    agency: str | None = None
    recorded_on: date
    evidence: Any = None


class EnterpriseDeregistered(AgencyEvent):
    """市场监管: 企业注销登记."""

    deregistered_on: date = Field(description="注销日期")
    reason: str = Field(min_length=1, max_length=500, description="注销原因")


class EnterpriseRenamed(AgencyEvent):
    """市场监管: 企业名称变更."""

    old_name: str | None = Field(None, max_length=200, description="原名称")
    new_name: str = Field(min_length=2, max_length=200, description="新名称")
    effective_on: date = Field(description="变更生效日期")


class EnterpriseMoved(AgencyEvent):
    """市场监管: 企业迁移登记 (住所迁至另一区县). ``region_code`` is the new region (= ``to_region_code``)."""

    from_region_code: RegionCode = Field(description="迁出区划")
    to_region_code: RegionCode = Field(description="迁入区划")
    effective_on: date = Field(description="迁移生效日期")


class RepresentativeChanged(AgencyEvent):
    """市场监管: 法定代表人变更."""

    legal_representative: str = Field(min_length=1, max_length=100, description="新法定代表人")
    previous: str | None = Field(None, max_length=100, description="原法定代表人")
    effective_on: date = Field(description="变更生效日期")


class TaxReported(AgencyEvent):
    """税务: 年度税务数据 (汇算清缴后). Amounts are yuan as decimal strings with 2 places."""

    year: int = Field(ge=2000, le=2100, description="所属年度")
    operating_revenue: Yuan | None = Field(None, description="年度营业收入(元)")
    rd_deduction_base: Yuan | None = Field(None, description="研发费用加计扣除基数(元)")
    tax_paid: Yuan | None = Field(None, description="年度纳税总额(元)")


class CreditListed(AgencyEvent):
    """信用: 列入严重失信主体名单 / 经营异常名录."""

    listing: CreditListing
    listed_on: date = Field(description="列入日期")
    reason: str = Field(min_length=1, max_length=500, description="列入事由")
    decision_no: str | None = Field(None, max_length=100, description="决定书文号")


class CreditLifted(AgencyEvent):
    """信用: 移出严重失信主体名单 (信用修复) / 移出经营异常名录."""

    listing: CreditListing
    lifted_on: date = Field(description="移出日期")
    reason: str | None = Field(None, max_length=500, description="移出事由")
    decision_no: str | None = Field(None, max_length=100, description="决定书文号")


PUBLISHED: dict[str, type[EventPayload]] = {
    LISTING_RECORDED: ListingRecorded,
    DEREGISTERED: EnterpriseDeregistered,
    RENAMED: EnterpriseRenamed,
    MOVED: EnterpriseMoved,
    REPRESENTATIVE_CHANGED: RepresentativeChanged,
    TAX_REPORTED: TaxReported,
    CREDIT_LISTED: CreditListed,
    CREDIT_LIFTED: CreditLifted,
}


def tolerant(model: type[M]) -> type[M]:
    """The consumer's reader of a producer model: the same fields, unknown ones ignored (a v1 payload may gain
    optional fields)."""
    reader = type(f"{model.__name__}Reader", (model,),
                  {"model_config": ConfigDict(extra="ignore"), "__module__": __name__, "__doc__": model.__doc__})
    return cast(type[M], reader)


ListingRecordedReader = tolerant(ListingRecorded)
EnterpriseDeregisteredReader = tolerant(EnterpriseDeregistered)
EnterpriseRenamedReader = tolerant(EnterpriseRenamed)
EnterpriseMovedReader = tolerant(EnterpriseMoved)
RepresentativeChangedReader = tolerant(RepresentativeChanged)
TaxReportedReader = tolerant(TaxReported)
CreditListedReader = tolerant(CreditListed)
CreditLiftedReader = tolerant(CreditLifted)

CONSUMED: dict[str, type[BaseModel]] = {
    LISTING_RECORDED: ListingRecordedReader,
    DEREGISTERED: EnterpriseDeregisteredReader,
    RENAMED: EnterpriseRenamedReader,
    MOVED: EnterpriseMovedReader,
    REPRESENTATIVE_CHANGED: RepresentativeChangedReader,
    TAX_REPORTED: TaxReportedReader,
    CREDIT_LISTED: CreditListedReader,
    CREDIT_LIFTED: CreditLiftedReader,
}

# One example per type, with Chinese data (余杭 330110 → 萧山 330109). The USCC is valid (both check characters).
EXAMPLE_USCC = "91330110MA27XKQ58A"
EXAMPLES: dict[str, dict[str, Any]] = {
    LISTING_RECORDED: {
        "uscc": EXAMPLE_USCC, "region_code": "330110", "listing": "major_accident", "agency": "杭州市应急管理局",
        "recorded_on": "2026-03-02", "evidence": "杭应急罚〔2026〕12号: 较大生产安全事故",
    },
    DEREGISTERED: {
        "uscc": EXAMPLE_USCC, "region_code": "330110", "agency": "杭州市余杭区市场监督管理局",
        "deregistered_on": "2026-06-30", "reason": "股东会决议解散, 清算完毕",
    },
    RENAMED: {
        "uscc": EXAMPLE_USCC, "region_code": "330110", "agency": "杭州市余杭区市场监督管理局",
        "old_name": "杭州余杭精密机械有限公司", "new_name": "浙江精工智能装备有限公司", "effective_on": "2026-04-15",
    },
    MOVED: {
        "uscc": EXAMPLE_USCC, "region_code": "330109", "agency": "杭州市市场监督管理局",
        "from_region_code": "330110", "to_region_code": "330109", "effective_on": "2026-05-20",
    },
    REPRESENTATIVE_CHANGED: {
        "uscc": EXAMPLE_USCC, "region_code": "330110", "agency": "杭州市余杭区市场监督管理局",
        "legal_representative": "李建华", "previous": "王伟", "effective_on": "2026-04-01",
    },
    TAX_REPORTED: {
        "uscc": EXAMPLE_USCC, "region_code": "330110", "agency": "国家税务总局杭州市余杭区税务局",
        "year": 2025, "operating_revenue": "68500000.00", "rd_deduction_base": "4210000.00",
        "tax_paid": "3125000.50",
    },
    CREDIT_LISTED: {
        "uscc": EXAMPLE_USCC, "region_code": "330110", "agency": "杭州市余杭区市场监督管理局",
        "listing": "abnormal_operation", "listed_on": "2026-07-01", "reason": "未按规定期限公示年度报告",
        "decision_no": "杭余市监异〔2026〕88号",
    },
    CREDIT_LIFTED: {
        "uscc": EXAMPLE_USCC, "region_code": "330110", "agency": "杭州市余杭区市场监督管理局",
        "listing": "abnormal_operation", "lifted_on": "2026-08-15", "reason": "已补报年度报告并公示",
        "decision_no": "杭余市监移〔2026〕31号",
    },
}

SUBJECTS: dict[str, str] = {
    LISTING_RECORDED: "部门名单",
    DEREGISTERED: "市场监管 注销",
    RENAMED: "市场监管 名称变更",
    MOVED: "市场监管 迁移",
    REPRESENTATIVE_CHANGED: "市场监管 法定代表人变更",
    TAX_REPORTED: "税务 年度数据",
    CREDIT_LISTED: "信用 列入名单",
    CREDIT_LIFTED: "信用 移出名单",
}
"""A short Chinese label per type (for printing and documentation)."""


def agency_actor(agency: str | None, region_code: str | None) -> Principal:
    """The audit actor of an effect an agency's message caused: ``agency:<name>``, role agency."""
    region = region_code if region_code and len(region_code) == 6 else "330000"
    return Principal(sub=f"agency:{agency or '部门'}", role=Role.AGENCY, region=region)
