"""Chinese notice templates, versioned: each notice stores the template code and version it was rendered from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Template:
    code: str
    version: int
    title: str
    body: str
    urgent: bool = False


_T = [
    Template("tier_recognised", 1, "认定通知",
             "{enterprise_name}:贵企业已被认定为{level_name}{tier_name}(批次 {batch_year},"
             "有效期 {valid_from} 至 {valid_to})。"),
    Template("review_decided", 1, "评审结果通知",
             "{enterprise_name}:您申报的{tier_name}已完成{stage_name}评审,结果:{decision_name}。{comment}"),
    Template("publicity_started", 1, "公示通知",
             "{enterprise_name}:您申报的{tier_name}已进入公示期({starts_on} 至 {ends_on})。"),
    Template("entitlement_approved", 1, "奖补核准通知",
             "{enterprise_name}:您的“{policy_name}”奖补资金 {amount} 元已核准。"),
    Template("disbursement_paid", 1, "资金拨付通知",
             "{enterprise_name}:奖补资金 {amount} 元已于 {paid_at} 拨付,请注意查收。"),
    Template("commissioner_assigned_enterprise", 1, "服务专员通知",
             "{enterprise_name}:已为贵企业安排{level_name}服务专员 {commissioner_name}(电话 {commissioner_mobile}),"
             "{change}"),
    Template("commissioner_assigned_commissioner", 1, "服务企业指派",
             "{commissioner_name}:您已被指派为{enterprise_name}({uscc},{tier_name})的服务专员。原因:{reason}。"),
    Template("commissioner_released", 1, "服务企业调整",
             "{commissioner_name}:{enterprise_name}({uscc})已调整由其他服务专员服务。原因:{reason}。"),
    Template("commissioner_unavailable", 1, "服务专员缺位预警",
             "预警:{enterprise_name}({uscc},{tier_name})需要{level_name}服务专员,但辖区 {alert_region} "
             "暂无可用服务专员(无人或已满额),请尽快安排。", urgent=True),
    Template("data_update_deadline", 1, "数据更新提醒",
             "{enterprise_name}:请于 {deadline} 前完成年度数据更新,逾期可能影响认定资格。"),
    Template("recheck_due", 1, "复核提醒",
             "{enterprise_name}:贵企业的{tier_name}(有效期至 {valid_to})需于 {due_on} 前完成复核。"),
    Template("validity_expiring", 1, "有效期到期提醒",
             "{enterprise_name}:贵企业的{tier_name}将于 {valid_to} 到期(剩余约 {days} 天),请及时准备复核材料。"),
    Template("tier_revoked", 1, "撤销认定通知",
             "{enterprise_name}:贵企业的{tier_name}认定已于 {revoked_on} 撤销,原因:{ground}。{ban}", urgent=True),
    Template("tier_expired", 1, "认定到期通知",
             "{enterprise_name}:贵企业的{tier_name}认定已于 {expired_on} 到期。"),
    Template("policy_push", 1, "政策推送",
             "{enterprise_name}:新政策“{policy_name}”与贵企业匹配({reason})。{summary}"),
    Template("gap_advice", 1, "达标差距提醒",
             "{enterprise_name}:根据 {year} 年度数据评估,贵企业距{tier_label}还差 {unmet} 项条件:{advice}。"
             "{reward}如需帮助,请联系服务专员或所在地经信部门。"),
    Template("gap_advice_commissioner", 1, "服务企业接近达标",
             "{commissioner_name}:您服务的{enterprise_name}({uscc})距{tier_label}还差 {unmet} 项条件:{advice}。"
             "{reward}"),
]

# Notices that stay in the inbox unless the recipient opted in to more (no e-mail, SMS only on opt-in).
INBOX_FIRST: frozenset[str] = frozenset({"gap_advice", "gap_advice_commissioner"})

TEMPLATES: dict[str, Template] = {t.code: t for t in _T}

LEVEL_NAMES = {"national": "国家级", "province": "省级", "city": "市级", "county": "县级"}
STAGE_NAMES = {"county": "县级", "city": "市级", "province": "省级", "national": "国家级"}
DECISION_NAMES = {"approved": "通过", "rejected": "未通过", "returned": "退回修改"}


class _Default(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


@dataclass(frozen=True)
class Rendered:
    code: str
    version: int
    title: str
    body: str
    urgent: bool


def render(code: str, variables: Mapping[str, Any]) -> Rendered:
    """Render a template; unknown variables render empty rather than failing a notice."""
    t = TEMPLATES[code]
    values = _Default({k: ("" if v is None else v) for k, v in variables.items()})
    return Rendered(t.code, t.version, t.title, t.body.format_map(values).strip(), t.urgent)
