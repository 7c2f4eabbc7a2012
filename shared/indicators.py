"""The annual indicator vocabulary: what registry stores and publishes, and what evaluation reads.

One model, shared because it is the published contract between the two services (and the 企业码 app's
self-assessment). Money is in yuan (``Decimal``, 2 places; 净利润 may be negative), counts are integers,
shares of a market are percentages. Ratios such as R&D intensity are never reported: evaluation computes
them from the raw amounts. Every field is optional: a missing value makes the conditions that need it
unmet with the reason "缺少数据".
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from shared.models import assembled

Yuan = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=2)]
SignedYuan = Annotated[Decimal, Field(max_digits=18, decimal_places=2)]
Count = Annotated[int, Field(ge=0)]
Percent = Annotated[Decimal, Field(ge=0, le=100, max_digits=7, decimal_places=4)]


class RdInstitutionLevel(StrEnum):
    NONE = "none"
    BELOW_CITY = "below_city"
    CITY = "city"
    PROVINCE = "province"
    NATIONAL = "national"


class AwardLevel(StrEnum):
    PROVINCIAL = "provincial"
    NATIONAL = "national"


class HonourCode(StrEnum):
    HIGH_TECH = "high_tech_enterprise"  # 高新技术企业
    TECH_INNOVATION_DEMO = "tech_innovation_demo"  # 国家级技术创新示范企业
    IP_ADVANTAGE = "ip_advantage"  # 知识产权优势企业
    IP_DEMO = "ip_demo"  # 知识产权示范企业
    TECH_SME = "tech_sme"  # 科技型中小企业


class Honour(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: HonourCode = Field(description="荣誉类别 (honour)")
    valid_until: date | None = Field(None, description="有效期至")


class SciAward(BaseModel):
    model_config = ConfigDict(extra="forbid")
    level: AwardLevel = Field(description="科技奖励级别 (provincial/national)")
    rank: Count = Field(description="获奖单位排名")
    year: int = Field(ge=1990, le=2100, description="获奖年度")


class IndicatorSet(BaseModel):
    """上年度及近年指标 (indicators of the reporting year and the years before it)."""

    model_config = ConfigDict(extra="forbid")

    # 财务 (yuan)
    operating_revenue: Yuan | None = Field(None, description="营业收入(上年度) operating revenue, year Y")
    operating_revenue_prev1: Yuan | None = Field(None, description="营业收入(Y-1)")
    operating_revenue_prev2: Yuan | None = Field(None, description="营业收入(Y-2)")
    main_business_revenue: Yuan | None = Field(None, description="主营业务收入(上年度)")
    main_business_revenue_prev1: Yuan | None = Field(None, description="主营业务收入(Y-1)")
    main_business_revenue_prev2: Yuan | None = Field(None, description="主营业务收入(Y-2)")
    rd_expense: Yuan | None = Field(None, description="研发费用(上年度)")
    rd_expense_prev1: Yuan | None = Field(None, description="研发费用(Y-1)")
    net_profit: SignedYuan | None = Field(None, description="净利润(上年度)")
    net_profit_prev1: SignedYuan | None = Field(None, description="净利润(Y-1)")
    net_profit_prev2: SignedYuan | None = Field(None, description="净利润(Y-2)")
    total_assets: Yuan | None = Field(None, description="资产总额(上年末)")
    total_liabilities: Yuan | None = Field(None, description="负债总额(上年末)")
    equity_financing_2y: Yuan | None = Field(None, description="近2年新增股权融资总额(合格机构投资者实缴额)")
    equity_financing_3y: Yuan | None = Field(None, description="近3年新增股权融资总额(合格机构投资者实缴额)")
    tax_paid: Yuan | None = Field(None, description="纳税总额(税收)")
    # 人员
    employees: Count | None = Field(None, description="职工总数")
    rd_staff: Count | None = Field(None, description="研发人员数")
    # 知识产权 (与主导产品相关的有效知识产权)
    ip_class1_high_value: Count | None = Field(None, description="Ⅰ类高价值知识产权数量")
    ip_class1_self_developed: Count | None = Field(None, description="自主研发Ⅰ类知识产权数量")
    ip_class1: Count | None = Field(None, description="Ⅰ类知识产权数量(发明专利等)")
    ip_class2: Count | None = Field(None, description="Ⅱ类知识产权数量(实用新型、外观、软著)")
    ip_class1_applied: Count | None = Field(None, description="实际应用并已产生经济效益的Ⅰ类知识产权数量")
    # 市场
    niche_years: Annotated[Decimal, Field(ge=0, le=200, decimal_places=2)] | None = Field(
        None, description="从事特定细分市场年限(截至上年末)"
    )
    main_products_count: Count | None = Field(None, description="主导产品数量")
    market_share_pct: Percent | None = Field(None, description="主导产品细分市场占有率(%)")
    market_rank_national: Annotated[int, Field(ge=1)] | None = Field(None, description="细分市场全国排名")
    market_rank_global: Annotated[int, Field(ge=1)] | None = Field(None, description="细分市场全球排名")
    # 精细化
    digital_level: Annotated[int, Field(ge=0, le=6)] | None = Field(None, description="数字化水平等级(一级=1 …)")
    info_system_core_business: bool | None = Field(None, description="至少1项核心业务采用信息系统支撑")
    quality_award_provincial: bool | None = Field(None, description="获得省级以上质量奖荣誉")
    quality_system_certified: bool | None = Field(None, description="建立质量管理体系并获ISO9001等认证")
    mgmt_system_certified: bool | None = Field(None, description="获得相关管理体系认证")
    intl_certification: bool | None = Field(None, description="产品获得发达国家或地区认证(国际标准协会行业认证)")
    own_brand: bool | None = Field(None, description="拥有自主品牌")
    standards_participated: Count | None = Field(None, description="主导或参与制修订标准数量")
    # 创新
    rd_institution_level: RdInstitutionLevel | None = Field(None, description="建立研发机构级别")
    sci_awards: list[SciAward] = Field(default_factory=list, description="科技奖励(级别、排名、年度)")
    maker_china_national_top: Annotated[int, Field(ge=1)] | None = Field(
        None, description="创客中国全国企业组名次档(50强=50, 500强=500)"
    )
    maker_china_year: int | None = Field(None, ge=2000, le=2100, description="创客中国获奖年度")
    honours: list[Honour] = Field(default_factory=list, description="荣誉(高新技术企业等,含有效期)")
    # 领域
    strategic_emerging_category: Annotated[int, Field(ge=1, le=9)] | None = Field(
        None, description="战略性新兴产业分类(2018)一级类别 1–9"
    )
    chain_key_role: bool | None = Field(
        None, description="在产业链供应链关键环节\"补短板、锻长板、填空白\"取得实际成效"
    )
    six_foundations: bool | None = Field(None, description="主导产品属于工业\"六基\"领域")
    time_honoured_brand: bool | None = Field(None, description="中华老字号")
    serves_chain_leader: bool | None = Field(None, description="主导产品服务关键产业链重点龙头企业")
    zj_key_industry: str | None = Field(None, max_length=40, description="浙江11个重点产业或415X集群领域代码")
    # 资源与合规 (培育库跟踪)
    land_area_mu: Annotated[Decimal, Field(ge=0, decimal_places=2)] | None = Field(None, description="用地面积(亩)")
    energy_tce: Annotated[Decimal, Field(ge=0, decimal_places=2)] | None = Field(None, description="综合能耗(吨标准煤)")
    cnc_rate_pct: Percent | None = Field(None, description="装备数控化率(%)")
    bank_credit_rating: str | None = Field(None, max_length=8, description="银行资信等级(AAA、AA、A …)")
    major_accident_3y: bool | None = Field(None, description="近三年发生重大安全(含网络和数据)、质量、环境污染事故")
    serious_dishonesty: bool | None = Field(None, description="列入严重失信主体名单")
    abnormal_operation: bool | None = Field(None, description="列入经营异常名录")
    local_indicators: dict[str, Decimal | bool | str] = Field(
        default_factory=dict, description="地方特色化指标(由省级主管部门配置的指标代码→取值)"
    )


def consistency_errors(ind: IndicatorSet) -> list[tuple[str, str]]:
    """Cross-field checks; each error is (field, Chinese message). Empty list: consistent."""
    errors: list[tuple[str, str]] = []

    def le(a: str, b: str, msg: str) -> None:
        va, vb = getattr(ind, a), getattr(ind, b)
        if va is not None and vb is not None and va > vb:
            errors.append((a, f"{msg} ({a} {va} > {b} {vb})"))

    le("main_business_revenue", "operating_revenue", "主营业务收入不能大于营业收入")
    le("main_business_revenue_prev1", "operating_revenue_prev1", "主营业务收入不能大于营业收入")
    le("main_business_revenue_prev2", "operating_revenue_prev2", "主营业务收入不能大于营业收入")
    le("rd_staff", "employees", "研发人员不能多于职工总数")
    le("ip_class1_high_value", "ip_class1", "Ⅰ类高价值知识产权不能多于Ⅰ类知识产权")
    le("ip_class1_self_developed", "ip_class1", "自主研发Ⅰ类知识产权不能多于Ⅰ类知识产权")
    le("ip_class1_applied", "ip_class1", "已应用Ⅰ类知识产权不能多于Ⅰ类知识产权")
    le("equity_financing_2y", "equity_financing_3y", "近2年股权融资不能大于近3年股权融资")
    assets, liabilities = ind.total_assets, ind.total_liabilities
    if assets is not None and liabilities is not None and assets == 0 < liabilities:
        errors.append(("total_assets", "资产总额为0时无法计算资产负债率"))
    return errors


# ---------------------------------------------------------------- indicators stored after validation


def _stored_form() -> type[BaseModel]:
    """``IndicatorSet`` without the bounds of its money and percentage fields (``max_digits``, ``decimal_places``,
    ``ge``, ``le``: most of the cost of validating a set), everything else the same."""
    fields: dict[str, Any] = {}
    for name, info in IndicatorSet.model_fields.items():
        if name != "local_indicators" and "Decimal" in repr(info.annotation):
            fields[name] = (Decimal | None, None)
        else:
            fields[name] = (info.annotation, info)
    return create_model("StoredIndicatorSet", __config__=ConfigDict(extra="forbid"), **fields)


_STORED = _stored_form()


def stored_indicators(text: str) -> IndicatorSet:
    """The ``IndicatorSet`` of JSON this system wrote from a validated set (``model_dump(mode="json")``: the
    evaluation service's stored reports), for re-evaluating and simulating 100,000 of them. It is parsed and
    typed like ``IndicatorSet.model_validate_json`` (same values, same fields set: tested), but the bounds of the
    amounts, already checked when the set was reported, are not checked again."""
    parsed = _STORED.model_validate_json(text)
    return assembled(IndicatorSet, parsed.__dict__, parsed.model_fields_set)

