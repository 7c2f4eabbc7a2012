"""Request and response models of the evaluation API (Chinese field descriptions; unknown fields refused).

Response models describe the JSON the routes have always returned (dates as ``YYYY-MM-DD``, timestamps as
ISO 8601 strings, scores as decimal strings with 2 places); they refuse keys they do not declare, so a view
and its model cannot drift apart silently.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.indicators import IndicatorSet

TierId = Literal["innovative", "srdi", "little_giant", "hidden_champion", "single_champion", "single_champion_product"]
LevelId = Literal["county", "city", "province", "national"]
Stage = Literal["county", "city", "province", "national"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- requests


class TitleIn(Strict):
    tier: str = Field(description="称号层级 (innovative、srdi、little_giant …)")
    level: str = Field(description="认定级别 (national、province、city、county)")
    valid_from: date = Field(description="有效期起")
    valid_to: date = Field(description="有效期至")
    revoked: bool = Field(False, description="已撤销")


class PreviewIn(Strict):
    ruleset: str | None = Field(None, description="规则集编号;缺省时按在决定日有效且覆盖该地区的全部规则集评价")
    as_of: date = Field(description="决定日期 (decision date)")
    indicators: IndicatorSet = Field(description="年度指标 (与 registry 同一口径)")
    titles: list[TitleIn] = Field(default_factory=list, description="已持有称号")
    region_code: str | None = Field(None, pattern=r"^\d{6}$", description="注册地行政区划代码;缺省为调用者所在地区")
    founded_on: date | None = Field(None, description="成立日期")
    industry_code: str | None = Field(None, max_length=10, description="行业代码")
    is_manufacturing: bool | None = Field(None, description="是否制造业")
    reporting_year: int | None = Field(None, ge=1990, le=2100, description="指标年度;缺省为决定日上一年")
    is_recheck: bool = Field(False, description="是否复核")


class ApplicationIn(Strict):
    uscc: str = Field(min_length=18, max_length=18, description="统一社会信用代码")
    tier: TierId = Field(description="申报称号层级")
    level: LevelId | None = Field(None, description="认定级别;缺省按称号 (小巨人、单项冠军: national)")
    batch_year: int = Field(ge=2018, le=2100, description="批次年度")
    recheck_of: uuid.UUID | None = Field(None, description="复核: 到期称号的认定编号")


class ReviewIn(Strict):
    stage: Stage = Field(description="审核环节")
    decision: Literal["approved", "rejected", "returned"] = Field(description="审核结论")
    comment: str = Field("", max_length=2000, description="审核意见")


class ObjectionIn(Strict):
    content: str = Field(min_length=1, max_length=5000, description="异议内容")


class ResolveIn(Strict):
    outcome: Literal["dismissed", "upheld"] = Field(
        description="处理结果: dismissed 异议不成立, upheld 异议成立(不予认定)"
    )
    resolution: str = Field(min_length=1, max_length=5000, description="处理说明")


class AnnounceIn(Strict):
    announced_on: date | None = Field(None, description="公告日期;缺省为今天。须在公示期结束之后")


class CommentIn(Strict):
    comment: str = Field("", max_length=2000, description="说明")


class RevokeIn(Strict):
    ground: str = Field(
        description="撤销事由 (data_fraud 数据造假, serious_dishonesty 严重失信, major_accident 重大事故, other 其他)"
    )
    evidence: str = Field(min_length=1, max_length=5000, description="证据与说明")
    revoked_on: date | None = Field(None, description="撤销日期;缺省为今天")


class Change(Strict):
    path: str = Field(min_length=1, description="参数路径,如 pass_score 或 items.0.bands.1.points")
    value: Any = Field(description="新取值")


class SimulationIn(Strict):
    draft: dict[str, Any] | None = Field(None, description="规则集草案 (JSON)")
    draft_yaml: str | None = Field(None, max_length=500_000, description="规则集草案 (YAML 文本)")
    base_ruleset: str | None = Field(None, description="对照的现行规则集编号;缺省为同编号或同层级现行规则集")
    changes: list[Change] = Field(default_factory=list, description="在对照规则集上修改参数 (无草案时)")
    as_of: date | None = Field(None, description="决定日期;缺省为今天")
    list_limit: int = Field(200, ge=0, le=5000, description="返回的增减企业名单上限")


# ---------------------------------------------------------------- rule sets and evaluations


class RuleSetOut(Strict):
    id: str = Field(description="规则集编号")
    version: int = Field(description="存储版本号(内容变化即新版本)")
    source_version: str = Field(description="规则文件中的版本标记")
    family: str | None = Field(description="规则族")
    document_number: str | None = Field(description="依据文件文号")
    title: str = Field(description="规则集名称")
    tier: str = Field(description="称号层级")
    level: str = Field(description="认定级别")
    jurisdiction: str = Field(description="适用辖区 (national 或行政区划代码)")
    effective_from: date | None = Field(description="生效日期")
    effective_to: date | None = Field(description="失效日期(含)")
    content_hash: str = Field(description="内容摘要 (SHA-256)")
    stored_at: str | None = Field(description="入库时间 (ISO 8601)")


class RuleSetList(Strict):
    items: list[RuleSetOut] = Field(description="规则集(各自最新版本)")
    total: int = Field(description="条数")


class SourceNote(Strict):
    path: str = Field(description="在规则集定义中的位置")
    code: str | None = Field(description="条目代码")
    name: str | None = Field(description="条目名称")
    source: Any = Field(description="出处(文件及条款)")
    unconfirmed: bool = Field(description="是否未经确认 (UNCONFIRMED)")


class RuleSetDetail(RuleSetOut):
    versions: list[RuleSetOut] = Field(description="全部存储版本")
    definition: dict[str, Any] = Field(description="规则集定义 (最新版本)")
    sources: list[SourceNote] = Field(description="全部出处标注")
    unconfirmed: list[SourceNote] = Field(description="未经确认的条目")
    cases: Any = Field(description="规则集的 YAML 用例")


class PreviewOut(Strict):
    as_of: date = Field(description="决定日期")
    region_code: str = Field(description="评价所用行政区划代码")
    results: list[dict[str, Any]] = Field(description="各规则集的评价结果及逐项解释")


class EvaluationOut(Strict):
    id: str = Field(description="评价编号")
    uscc: str = Field(description="统一社会信用代码")
    region_code: str = Field(description="行政区划代码")
    year: int = Field(description="指标年度")
    ruleset_id: str = Field(description="规则集编号")
    ruleset_version: str = Field(description="规则集版本")
    tier: str = Field(description="称号层级")
    level: str = Field(description="认定级别")
    as_of: date = Field(description="决定日期")
    eligible: bool = Field(description="是否达标")
    score: str | None = Field(description="得分(两位小数);不计分的规则集为 null")
    created_at: str | None = Field(description="评价时间 (ISO 8601)")
    explanation: dict[str, Any] | None = Field(None, description="逐项解释(条件、得分项、差距)")


class EnterpriseEvaluations(Strict):
    uscc: str = Field(description="统一社会信用代码")
    year: int | None = Field(description="指标年度(查询条件)")
    items: list[EvaluationOut] = Field(description="各称号层级最新一次评价")


class JobAccepted(Strict):
    job_id: str = Field(description="任务编号")
    status: str = Field(description="任务状态 (queued)")
    href: str = Field(description="查询进度的地址")


class JobOut(Strict):
    id: str = Field(description="任务编号")
    kind: str = Field(description="任务类型 (reevaluate)")
    ruleset_id: str | None = Field(description="规则集编号")
    status: str = Field(description="状态: queued 排队, running 运行中, done 完成, failed 失败")
    total: int = Field(description="需评价企业数")
    done: int = Field(description="已评价企业数")
    progress_pct: float = Field(description="进度百分比")
    error: str | None = Field(description="失败原因")
    created_at: str | None = Field(description="创建时间 (ISO 8601)")
    started_at: str | None = Field(description="开始时间 (ISO 8601)")
    finished_at: str | None = Field(description="结束时间 (ISO 8601)")


# ---------------------------------------------------------------- applications and recognitions


class ObjectionOut(Strict):
    id: str = Field(description="异议编号")
    content: str = Field(description="异议内容")
    status: str = Field(description="状态: open 待处理, resolved 已处理")
    outcome: str | None = Field(description="处理结果: dismissed 不成立, upheld 成立")
    resolution: str | None = Field(description="处理说明")
    lodged_by: str = Field(description="登记人")


class EvaluationBrief(Strict):
    ruleset_id: str = Field(description="规则集编号")
    eligible: bool = Field(description="是否达标")
    score: str | None = Field(description="得分(两位小数)")


class ApplicationOut(Strict):
    id: str = Field(description="申请编号")
    uscc: str = Field(description="统一社会信用代码")
    region_code: str = Field(description="行政区划代码")
    tier: str = Field(description="申报称号层级")
    level: str = Field(description="认定级别")
    batch_year: int = Field(description="批次年度")
    state: str = Field(description="状态")
    state_zh: str = Field(description="状态(中文)")
    is_recheck: bool = Field(description="是否复核")
    nominated: bool = Field(description="是否县级推荐")
    renews_recognition_id: str | None = Field(description="复核所续的认定编号")
    evaluation_id: str | None = Field(description="申报时附带的评价编号(决定该称号的规则集下的最新评价)")
    ruleset_id: str | None = Field(
        description="决定该称号的规则集 (按省份配置的 称号层级+认定级别 → 规则集; 无配置为 null)"
    )
    submitted_by: str = Field(description="提交人")
    publicity_starts_on: date | None = Field(description="公示开始日期")
    publicity_ends_on: date | None = Field(description="公示结束日期")
    recognition_id: str | None = Field(description="认定编号(公告后)")
    history: list[dict[str, Any]] = Field(description="办理记录(操作、办理人、时间、意见)")
    allowed_actions: list[str] = Field(description="当前允许的操作(前置条件不满足时不含公告)")
    allowed_decisions: dict[str, list[str]] = Field(
        description="各审核操作可作的结论;决定环节前置条件不满足时不含 approved"
    )
    unmet_prerequisites: list[str] | None = Field(
        description="决定日不满足的前置条件(下一步为决定环节审核或公告时核查;否则为 null)"
    )
    objections: list[ObjectionOut] | None = Field(None, description="公示期异议(仅申请详情)")
    evaluation: EvaluationOut | EvaluationBrief | None = Field(
        None, description="附带的评价: 申报时为摘要, 申请详情中为含解释的完整评价"
    )


class ApplicationList(Strict):
    items: list[ApplicationOut] = Field(description="申请(最新在前)")


class ObjectionLodged(Strict):
    id: str = Field(description="异议编号")
    application_id: str = Field(description="申请编号")
    status: str = Field(description="状态 (open)")


class RecognitionOut(Strict):
    id: str = Field(description="认定编号")
    uscc: str = Field(description="统一社会信用代码")
    region_code: str = Field(description="行政区划代码")
    tier: str = Field(description="称号层级")
    level: str = Field(description="认定级别")
    ruleset_id: str | None = Field(description="认定所依据的规则集")
    batch_year: int = Field(description="批次年度")
    application_id: str | None = Field(description="申请编号")
    announced_on: date = Field(description="公告日期")
    valid_from: date = Field(description="有效期起")
    valid_to: date = Field(description="有效期至")
    status: str = Field(description="状态: active 有效, expired 已到期, revoked 已撤销, renewed 已复核续期")
    renewal: bool = Field(description="是否复核续期")
    revoked_on: date | None = Field(description="撤销日期")
    revoke_ground: str | None = Field(description="撤销事由")
    revoke_evidence: str | None = Field(description="撤销证据与说明")
    ban_until: date | None = Field(description="不得申报截止日期")
    expired_on: date | None = Field(description="到期日期")


class Announced(Strict):
    application: ApplicationOut = Field(description="申请(已公告认定)")
    recognition: RecognitionOut = Field(description="认定结果")


class EnterpriseRecognitions(Strict):
    uscc: str = Field(description="统一社会信用代码")
    current: list[RecognitionOut] = Field(description="当前有效称号")
    upcoming: list[RecognitionOut] = Field(description="已公告、有效期尚未开始的称号")
    past: list[RecognitionOut] = Field(description="历史称号(到期、撤销、续期)")
    banned_until: date | None = Field(description="不得申报截止日期")


class Revoked(Strict):
    revoked: list[RecognitionOut] = Field(description="被撤销的称号")


# ---------------------------------------------------------------- simulation


class DraftRef(Strict):
    id: str = Field(description="草案规则集编号")
    version: int = Field(description="草案版本")
    tier: str = Field(description="称号层级")
    jurisdiction: str = Field(description="适用辖区")


class BaselineRef(Strict):
    id: str = Field(description="对照规则集编号")
    version: int = Field(description="对照规则集版本")


class SimulationTotals(Strict):
    enterprises: int = Field(description="参与模拟的企业数")
    draft: int = Field(description="按草案达标企业数")
    current: int = Field(description="按现行规则达标企业数")
    gained: int = Field(description="新增达标企业数")
    lost: int = Field(description="不再达标企业数")


class SimulationRegion(Strict):
    region_code: str = Field(description="行政区划代码")
    enterprises: int = Field(description="企业数")
    draft: int = Field(description="按草案达标")
    current: int = Field(description="按现行规则达标")
    delta: int = Field(description="增减")


class SimulationOut(Strict):
    as_of: date = Field(description="决定日期")
    draft: DraftRef = Field(description="草案")
    baseline: BaselineRef | None = Field(description="对照的现行规则集;无则为 null")
    totals: SimulationTotals = Field(description="合计")
    regions: list[SimulationRegion] = Field(description="按行政区划")
    gainers: list[str] = Field(description="新增达标企业 (统一社会信用代码, 至多 list_limit 家)")
    losers: list[str] = Field(description="不再达标企业 (统一社会信用代码, 至多 list_limit 家)")


# ---------------------------------------------------------------- dev clock


class DevClockIn(Strict):
    as_of: date = Field(description="评价服务的决定日(开发/测试环境模拟日期,如 2026-11-09)")


class DevClockOut(Strict):
    decision_date: date = Field(description="当前决定日")
    source: Literal["dev_clock", "ZJTX_EVAL_AS_OF", "today"] = Field(description="决定日来源")
    today: date = Field(description="系统日期")
