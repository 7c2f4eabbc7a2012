"""Request and response models of the notification API (Chinese field descriptions for users)."""

from __future__ import annotations

from datetime import datetime, time
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer

MOBILE = r"^1\d{10}$"
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


# --- commissioners --------------------------------------------------------------------------------------------


class CommissionerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{3,64}$", description="专员编号(即登录令牌 sub),不填自动生成")
    name: str = Field(min_length=1, max_length=100, description="姓名")
    mobile: str = Field(pattern=MOBILE, description="手机号")
    email: str | None = Field(None, pattern=EMAIL, max_length=200, description="电子邮箱")
    region: str = Field(pattern=r"^\d{6}$", description="所属行政区划代码 (GB/T 2260)")
    level: Literal["city", "county"] = Field(description="层级:city 设区市 / county 县(市、区)")
    capacity: int = Field(20, ge=1, le=1000, description="最多服务企业数")
    active: bool = Field(True, description="是否在岗")


class CommissionerPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=100, description="姓名")
    mobile: str | None = Field(None, pattern=MOBILE, description="手机号")
    email: str | None = Field(None, pattern=EMAIL, max_length=200, description="电子邮箱")
    capacity: int | None = Field(None, ge=1, le=1000, description="最多服务企业数")
    active: bool | None = Field(None, description="是否在岗;停用后其服务企业自动重新指派")


class CommissionerOut(BaseModel):
    id: str = Field(description="专员编号")
    name: str = Field(description="姓名")
    mobile: str = Field(description="手机号")
    email: str | None = Field(description="电子邮箱")
    region: str = Field(description="所属行政区划代码")
    level: str = Field(description="层级 city/county")
    capacity: int = Field(description="最多服务企业数")
    active: bool = Field(description="是否在岗")
    load: int = Field(description="当前服务企业数")


class ServedEnterprise(BaseModel):
    uscc: str = Field(description="统一社会信用代码")
    name: str | None = Field(description="企业名称")
    region_code: str = Field(description="企业所在行政区划")
    tier: str = Field(description="决定服务层级的认定类型")
    level: str = Field(description="服务层级")
    assigned_at: datetime = Field(description="指派时间")


class HistoryOut(BaseModel):
    commissioner_id: str | None = Field(description="新服务专员(空表示无)")
    previous_commissioner_id: str | None = Field(description="原服务专员")
    tier: str | None = Field(description="认定类型")
    level: str | None = Field(description="服务层级")
    reason: str = Field(description="原因")
    actor: str = Field(description="操作人")
    at: datetime = Field(description="时间")


class AssignmentOut(BaseModel):
    uscc: str = Field(description="统一社会信用代码")
    status: str = Field(description="assigned 已指派 / unassigned 缺位待派 / none 无需专员")
    tier: str | None = Field(None, description="决定服务层级的认定类型")
    level: str | None = Field(None, description="服务层级 city/county")
    target_region: str | None = Field(None, description="专员所属辖区")
    commissioner: CommissionerOut | None = Field(None, description="当前服务专员")
    history: list[HistoryOut] = Field(default_factory=list, description="指派历史(新→旧)")


class ReassignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    commissioner_id: str = Field(min_length=1, max_length=64, description="新服务专员编号")
    reason: str = Field(min_length=1, max_length=150, description="调整原因")


# --- inbox ----------------------------------------------------------------------------------------------------


class DeliveryOut(BaseModel):
    channel: str = Field(description="渠道 sms 短信 / email 邮件")
    status: str = Field(
        description="状态 pending 待发 / sending 发送中 / sent 已发送 / failed 失败 / deferred 免打扰延后"
    )
    attempts: int = Field(description="尝试次数")
    sent_at: datetime | None = Field(description="发送时间")


class NoticeOut(BaseModel):
    id: int = Field(description="通知编号")
    title: str = Field(description="标题")
    body: str = Field(description="正文")
    template_code: str = Field(description="模板编码")
    template_version: int = Field(description="模板版本")
    uscc: str | None = Field(description="相关企业")
    urgent: bool = Field(description="是否紧急")
    created_at: datetime = Field(description="创建时间")
    read_at: datetime | None = Field(description="已读时间")
    deliveries: list[DeliveryOut] = Field(description="短信/邮件投递状态")


class NoticePage(BaseModel):
    items: list[NoticeOut] = Field(description="通知(新→旧)")
    next_cursor: int | None = Field(description="下一页游标")


class UnreadCount(BaseModel):
    unread: int = Field(description="未读数")


class PreferencesIO(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sms: bool = Field(True, description="接收短信")
    email: bool = Field(True, description="接收邮件")
    quiet_start: time | None = Field(None, description="免打扰开始(北京时间,如 22:00)")
    quiet_end: time | None = Field(None, description="免打扰结束(北京时间,如 07:30)")
    gap_advice_sms: bool = Field(False, description="达标差距提醒(精准服务)也发短信;默认只进站内信")


# --- gap advice -----------------------------------------------------------------------------------------------


class NearQualifyingOut(BaseModel):
    uscc: str = Field(description="统一社会信用代码")
    name: str | None = Field(description="企业名称")
    region_code: str = Field(description="企业所在行政区划")
    tier: str = Field(description="接近达标的认定类型")
    tier_name: str = Field(description="认定类型名称(含层级)")
    level: str | None = Field(description="评价规则对应的认定层级")
    year: int = Field(description="评价所用数据年度")
    unmet: int = Field(description="未满足条件数")
    yuan_gap: Decimal | None = Field(description="资金差距合计(元,两位小数;非资金差距时为空)")
    reward: Decimal | None = Field(description="认定后按县、市、省现行政策可获一次性奖励合计(元,两位小数)")
    advice: str = Field(description="差距说明")
    advised_at: datetime = Field(description="提醒时间")

    @field_serializer("yuan_gap", "reward")
    def _money(self, v: Decimal | None) -> str | None:
        return None if v is None else f"{v.quantize(Decimal('0.01'))}"
