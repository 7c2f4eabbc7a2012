"""Chinese names of the event types, for pages (the type id stays visible next to them)."""

from __future__ import annotations

EVENT_NAMES: dict[str, str] = {
    "zjtx.registry.enterprise.registered.v1": "企业登记",
    "zjtx.registry.enterprise.updated.v1": "企业信息变更",
    "zjtx.registry.enterprise.deregistered.v1": "企业注销",
    "zjtx.registry.indicators.reported.v1": "年度指标报送",
    "zjtx.registry.pool.entered.v1": "入培育库",
    "zjtx.registry.pool.exited.v1": "出培育库",
    "zjtx.evaluation.evaluation.completed.v1": "完成评价",
    "zjtx.evaluation.application.submitted.v1": "提交申报",
    "zjtx.evaluation.review.decided.v1": "审核决定",
    "zjtx.evaluation.publicity.started.v1": "开始公示",
    "zjtx.evaluation.tier.recognised.v1": "认定称号",
    "zjtx.evaluation.tier.expired.v1": "称号到期",
    "zjtx.evaluation.tier.revoked.v1": "称号撤销",
    "zjtx.evaluation.recheck.due.v1": "复核到期提醒",
    "zjtx.finance.entitlement.created.v1": "生成奖补",
    "zjtx.finance.entitlement.approved.v1": "奖补审批通过",
    "zjtx.finance.disbursement.paid.v1": "奖补拨付",
    "zjtx.finance.disbursement.failed.v1": "拨付失败",
    "zjtx.finance.recovery.raised.v1": "奖补追回",
    "zjtx.notification.commissioner.assigned.v1": "分配服务专员",
    "zjtx.notification.commissioner.unavailable.v1": "无可用服务专员",
    "zjtx.notification.commissioner.released.v1": "解除服务专员",
    "zjtx.agency.listing.recorded.v1": "部门名单记录 (信用等)",
}
