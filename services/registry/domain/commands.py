"""Commands: the validated input of the registry's use cases (API request bodies and import rows alike)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.registry.domain.classify import EMAIL_RE, MOBILE_RE, Foundation, Scale, normalise_industry_code
from shared.indicators import IndicatorSet
from shared.tiers import Tier

Track = Tier
PoolLevel = Literal["county", "city", "province"]


class LiaisonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=40, description="服务联络员姓名")
    mobile: str = Field(description="服务联络员手机号(11位,1[3-9]开头)")
    email: str | None = Field(None, max_length=120, description="服务联络员邮箱")

    @field_validator("email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        if v is None:
            return None
        v = v.strip()
        if not EMAIL_RE.match(v):
            raise ValueError("邮箱格式不正确,应形如 name@example.com (invalid email)")
        return v

    @field_validator("mobile")
    @classmethod
    def _mobile(cls, v: str) -> str:
        if not MOBILE_RE.match(v):
            raise ValueError("手机号格式不正确,须为11位且以13–19开头 (invalid mobile)")
        return v


class FocusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    foundations: list[Foundation] = Field(default_factory=list, description="工业五基/六基领域")
    strategic_emerging_category: int | None = Field(
        None, ge=1, le=9, description="战略性新兴产业分类(2018)一级类别 1–9"
    )
    local_priority_industry: str | None = Field(
        None, max_length=60, description="地方重点产业(如 415X 集群、余杭 医疗器械)"
    )


class EnterpriseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    uscc: str = Field(min_length=1, max_length=40, description="统一社会信用代码(18位)")
    name: str = Field(min_length=2, max_length=200, description="企业名称")
    region_code: str = Field(pattern=r"^\d{6}$", description="所属县级区划或功能区代码(须在本人管辖范围内)")
    industry_code: str = Field(
        description="国民经济行业代码 GB/T 4754-2017 (2–4位数字;带门类字母的写法如 C3484 亦可,存为 3484)"
    )
    founded_on: date | None = Field(None, description="成立日期")
    scale: Scale | None = Field(
        None, description="企业规模 large 大/medium 中/small 小/micro 微;不填则按工信部联企业〔2011〕300号推算"
    )
    employees: int | None = Field(None, ge=0, description="从业人员数(用于推算规模)")
    operating_revenue: Decimal | None = Field(
        None, ge=0, max_digits=18, decimal_places=2, description="上年营业收入(元,用于推算规模)"
    )
    focus: FocusIn = Field(default_factory=FocusIn, description="重点领域")
    liaison: LiaisonIn | None = Field(None, description="服务联络员")

    @field_validator("industry_code")
    @classmethod
    def _industry(cls, v: str | None) -> str | None:
        return None if v is None else normalise_industry_code(v)


class EnterprisePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=2, max_length=200, description="企业名称")
    region_code: str | None = Field(None, pattern=r"^\d{6}$", description="所属区划(迁移)")
    industry_code: str | None = Field(None, description="国民经济行业代码(如 3484 或 C3484)")
    founded_on: date | None = Field(None, description="成立日期")
    scale: Scale | None = Field(None, description="企业规模")
    focus: FocusIn | None = Field(None, description="重点领域")
    liaison: LiaisonIn | None = Field(None, description="服务联络员")

    @field_validator("industry_code")
    @classmethod
    def _industry(cls, v: str | None) -> str | None:
        return None if v is None else normalise_industry_code(v)


class DeregisterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=2, max_length=500, description="注销/移出原因")


class IndicatorsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str | None = Field(
        None, description="数据来源: self_report 企业自报, agency:<机构名> 部门数据(仅 agency 角色)"
    )
    indicators: IndicatorSet = Field(description="年度指标")


class PoolEntryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    uscc: str = Field(description="统一社会信用代码")
    track: Track = Field(description="培育方向(梯度称号 id)")
    year: int = Field(ge=2000, le=2100, description="入库年度")
    basis: Literal["nomination", "rule_result"] = Field(description="入库方式: 推荐 / 评价结果")
    reason: str | None = Field(None, max_length=500, description="入库说明(如评价编号)")


class PoolExitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    track: Track = Field(description="培育方向")
    reason: str = Field(min_length=2, max_length=500, description="出库原因")


class TargetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    region_code: str = Field(pattern=r"^\d{6}$", description="区划代码")
    track: Track = Field(description="梯度称号 id")
    measure: Literal["recognised", "pool"] = Field(description="recognised 认定数 / pool 入库数")
    level: Literal["national", "province", "city", "county", "any"] = Field(description="称号或培育库层级")
    year: int = Field(ge=2000, le=2100, description="目标年度")
    target: int = Field(ge=0, le=1_000_000, description="目标数")
    source: str | None = Field(None, max_length=300, description="依据文件")
