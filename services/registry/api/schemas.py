"""Request and response models of the registry API (Chinese descriptions for OpenAPI)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

from services.registry.domain.commands import (
    DeregisterIn,
    EnterpriseIn,
    EnterprisePatch,
    FocusIn,
    IndicatorsIn,
    LiaisonIn,
    PoolEntryIn,
    PoolExitIn,
    PoolLevel,
    TargetIn,
    Track,
)

__all__ = [
    "DeregisterIn", "EnterpriseIn", "EnterprisePatch", "FocusIn", "IndicatorsIn", "LiaisonIn", "PoolEntryIn",
    "PoolExitIn", "PoolLevel", "TargetIn", "Track",
]


class TierOut(BaseModel):
    recognition_id: str
    tier: str = Field(description="梯度称号")
    level: str = Field(description="认定层级")
    valid_from: date | None = Field(None, description="有效期起")
    valid_to: date | None = Field(None, description="有效期止")


class PoolMembershipOut(BaseModel):
    pool_id: int
    level: str = Field(description="培育库层级")
    pool_region: str = Field(description="培育库所属区划")
    track: str = Field(description="培育方向(梯度)")
    year: int = Field(description="入库年度")
    basis: str = Field(description="入库方式 nomination 推荐 / rule_result 评价结果")
    entered_on: date
    exited_on: date | None = None
    exit_reason: str | None = None


class EnterpriseOut(BaseModel):
    uscc: str
    name: str
    region_code: str
    region_name: str | None = None
    industry_code: str
    is_manufacturing: bool = Field(description="是否制造业(行业大类13–43)")
    founded_on: date | None
    scale: str | None = Field(description="企业规模")
    scale_source: str | None = Field(description="given 填报 / derived 推算")
    focus: dict[str, Any]
    liaison: dict[str, Any] | None
    status: str = Field(description="active 在库 / deregistered 已注销")
    deregistered_reason: str | None = None
    version: int
    created_at: datetime
    updated_at: datetime
    current_tiers: list[TierOut] = Field(default_factory=list, description="当前有效称号")
    pools: list[PoolMembershipOut] = Field(default_factory=list, description="当前所在培育库")
    warnings: list[str] = Field(default_factory=list, description="校验提示(不影响登记)")


class EnterprisePage(BaseModel):
    items: list[EnterpriseOut]
    next_cursor: str | None = Field(None, description="下一页游标")


class IndicatorRevisionOut(BaseModel):
    revision: int
    source: str
    actor: str
    reported_at: datetime
    values: dict[str, Any]


class IndicatorsOut(BaseModel):
    uscc: str
    year: int
    revision: int = Field(description="最新修订号")
    reported_at: datetime
    sources: list[str] = Field(description="参与合并的数据来源")
    indicators: dict[str, Any] = Field(description="有效指标(部门数据按字段优先于企业自报)")
    history: list[IndicatorRevisionOut] | None = None


class TargetOut(TargetIn):
    id: int


class ProgressRow(BaseModel):
    track: str = Field(description="梯度称号 id")
    measure: str = Field(description="recognised 认定 / pool 入库")
    level: str = Field(description="称号或培育库层级(any=全部层级)")
    target: int | None = Field(description="本级目标")
    children_target: int | None = Field(description="下级目标合计(逐级汇总)")
    actual: int = Field(description="实际数(含下级)")
    completion_pct: str | None = Field(description="完成率(%),对本级目标,无本级目标时对下级合计")


class ProgressNode(BaseModel):
    region_code: str
    name: str
    rows: list[ProgressRow]


class ProgressOut(BaseModel):
    year: int
    as_of: date = Field(description="统计时点(年末或今天)")
    region: ProgressNode
    children: list[ProgressNode]


class PoolMemberOut(BaseModel):
    uscc: str
    name: str = Field(description="企业名称")
    region_code: str
    track: str = Field(description="培育方向")
    year: int = Field(description="入库年度")
    basis: str = Field(description="入库方式")
    entered_on: date
    exited_on: date | None = None


class PoolListOut(BaseModel):
    level: str
    region_code: str
    region_name: str | None
    year: int | None = Field(description="公布年度(空=当前)")
    pools: list[dict[str, object]] = Field(description="各方向培育库")
    members: list[PoolMemberOut]


class JobOut(BaseModel):
    id: uuid.UUID
    kind: str = Field(description="enterprises 企业 / indicators 指标")
    mode: str = Field(description="all_or_nothing 全部成功才导入 / accept_valid 导入有效行")
    status: str = Field(
        description="queued 排队 / running 处理中 / done 完成 / failed 失败 / "
        "superseded 执行中断且已被重新提交的作业取代"
    )
    attempts: int = Field(0, description="已执行次数(中断后重新排队会增加)")
    superseded_by: uuid.UUID | None = Field(None, description="取代本作业的导入作业(同一上传者重新提交的同一文件)")
    filename: str | None
    rows_total: int = Field(description="总行数")
    rows_done: int = Field(description="已处理行数")
    rows_imported: int = Field(description="已导入行数")
    error_count: int
    errors: list[dict[str, Any]] = Field(description="错误行: row 行号(表头为第1行), column 列, reason 原因")
    detail: str | None
    created_at: datetime
    finished_at: datetime | None


class RegionOut(BaseModel):
    code: str = Field(description="区划代码(功能区为项目代码)")
    name: str = Field(description="名称")
    parent_code: str | None = Field(description="上级代码")
    level: str = Field(description="province / city / county")
    is_zone: bool = Field(description="是否为非行政区划的功能区(项目代码)")
    status: str = Field(description="active 现行 / retired 已撤销")
    retired_on: date | None = Field(None, description="撤销日期")
    successor_code: str | None = Field(None, description="继承区划代码")
    note: str | None = None
    children: list[RegionOut] = Field(default_factory=list)


class RegionTree(BaseModel):
    snapshot: str = Field(description="区划快照版本")
    root: RegionOut
