"""Event contracts of the notification service (docs/events.md).

``PUBLISHED``: the commissioner events notification emits, producer models (``extra="forbid"``); every payload
it writes to its outbox is built from one of them.
``CONSUMED``: what its handlers read from registry, evaluation, finance and its own topic, tolerant readers
(``extra="ignore"``) modelling only the fields the handlers use; fields a producer may not send yet are optional
(the gap advice reads ``evaluation.completed``'s per-result ``level``, ``unmet`` and ``gaps``, and
``policy.published``'s ``rewards``, when they are there).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from shared.events.envelope import EventPayload, EventReader

# --- published ------------------------------------------------------------------------------------------------

ASSIGNED = "zjtx.notification.commissioner.assigned.v1"
UNAVAILABLE = "zjtx.notification.commissioner.unavailable.v1"
RELEASED = "zjtx.notification.commissioner.released.v1"


class CommissionerAssigned(EventPayload):
    uscc: str
    region_code: str
    tier: str
    level: str = Field(description="服务专员层级 city/county")
    commissioner_id: str
    commissioner_name: str
    previous_commissioner_id: str | None
    reason: str


class CommissionerUnavailable(EventPayload):
    uscc: str
    region_code: str
    tier: str
    level: str
    alert_region: str


class CommissionerReleased(EventPayload):
    uscc: str
    region_code: str | None  # null once the enterprise is deregistered
    commissioner_id: str
    reason: str


NOTICE_SENT = "zjtx.notification.notice.sent.v1"


class NoticeSent(EventPayload):
    """A notice was put in an inbox (an enterprise's, a commissioner's or an officials'), with the SMS/e-mail sends
    queued for it: what the programme's reports count as notices sent. No contact data (names, mobiles, e-mail
    addresses, texts) leaves the service. Key: the enterprise's USCC, else the region code."""

    EXAMPLE: ClassVar[dict[str, Any]] = {
        "notice_id": 4711, "uscc": "91330110MA27XKQ58A", "region_code": "330110", "kind": "gap_advice",
        "kind_name": "梯度培育差距提示", "recipient_kind": "enterprise", "commissioner_id": None, "tier": "srdi",
        "tier_name": "省级专精特新中小企业", "channels": [], "year": 2026, "occurred_at": "2026-06-30T09:30:00+08:00",
    }

    notice_id: int
    uscc: str | None
    region_code: str | None = Field(description="企业所在区划 (无企业时: 收件机关或专员的区划)")
    kind: str = Field(description="通知模板代码 (gap_advice, tier_recognised, policy_push …)")
    kind_name: str = Field(description="通知类别中文名")
    recipient_kind: Literal["enterprise", "commissioner", "official"]
    commissioner_id: str | None = Field(description="收件的服务专员 (recipient_kind = commissioner)")
    tier: str | None = Field(description="涉及的梯度 (如有)")
    tier_name: str | None
    channels: list[str] = Field(description="已排队的外发渠道 sms/email;空 = 仅站内信")
    year: int
    occurred_at: datetime


PUBLISHED: dict[str, type[BaseModel]] = {
    ASSIGNED: CommissionerAssigned,
    UNAVAILABLE: CommissionerUnavailable,
    RELEASED: CommissionerReleased,
    NOTICE_SENT: NoticeSent,
}

# --- consumed -------------------------------------------------------------------------------------------------

ENTERPRISE_REGISTERED = "zjtx.registry.enterprise.registered.v1"
ENTERPRISE_UPDATED = "zjtx.registry.enterprise.updated.v1"
ENTERPRISE_DEREGISTERED = "zjtx.registry.enterprise.deregistered.v1"
TIER_RECOGNISED = "zjtx.evaluation.tier.recognised.v1"
TIER_REVOKED = "zjtx.evaluation.tier.revoked.v1"
TIER_EXPIRED = "zjtx.evaluation.tier.expired.v1"
RECHECK_DUE = "zjtx.evaluation.recheck.due.v1"
REVIEW_DECIDED = "zjtx.evaluation.review.decided.v1"
PUBLICITY_STARTED = "zjtx.evaluation.publicity.started.v1"
EVALUATION_COMPLETED = "zjtx.evaluation.evaluation.completed.v1"
ENTITLEMENT_APPROVED = "zjtx.finance.entitlement.approved.v1"
DISBURSEMENT_PAID = "zjtx.finance.disbursement.paid.v1"
POLICY_PUBLISHED = "zjtx.finance.policy.published.v1"


class Liaison(EventReader):
    name: str | None = None
    mobile: str | None = None
    email: str | None = None


class EnterpriseChanged(EventReader):
    uscc: str
    name: str
    region_code: str
    liaison: Liaison | None = None
    version: int = 0


class Deregistered(EventReader):
    uscc: str
    region_code: str
    version: int = 0


class Recognised(EventReader):
    recognition_id: str
    uscc: str
    region_code: str
    tier: str
    level: str
    batch_year: int | None = None
    announced_on: date | None = None
    valid_from: date | None = None
    valid_to: date | None = None
    # a title re-announced to the jurisdiction the enterprise moved into (整体迁入): not a new title
    migrated_in: bool = False


class Ended(EventReader):
    recognition_id: str
    uscc: str
    region_code: str
    tier: str
    level: str
    ground: str | None = None
    revoked_on: date | None = None
    expired_on: date | None = None
    ban_until: date | None = None


class RecheckDue(EventReader):
    recognition_id: str
    uscc: str
    region_code: str
    tier: str
    valid_to: date | None = None
    due_on: date


class ReviewDecided(EventReader):
    application_id: str
    uscc: str
    region_code: str
    tier: str
    stage: str
    decision: str
    comment: str | None = None


class PublicityStarted(EventReader):
    application_id: str
    uscc: str
    region_code: str
    tier: str
    starts_on: date
    ends_on: date


class GapIn(EventReader):
    """One unmet condition's gap, as evaluation's engine describes it (``domain/engine.py`` ``Gap``)."""

    code: str = ""
    description: str = ""
    metric: str | None = None
    unit: str | None = None
    current: str | None = None
    required: str | None = None
    shortfall: Decimal | None = None
    yuan_needed: Decimal | None = None


class EvalResult(EventReader):
    tier: str
    eligible: bool
    ruleset_id: str | None = None
    # optional until evaluation publishes them: the title level the rule set decides (national/province/
    # city/county), the unmet conditions (their count or their texts) and the gaps of the unmet conditions
    level: str | None = None
    unmet: int | list[Any] | None = None
    gaps: list[GapIn] | None = None


class EvaluationCompleted(EventReader):
    uscc: str
    region_code: str
    year: int
    as_of: date | None = None
    results: list[EvalResult]


class EntitlementApproved(EventReader):
    entitlement_id: str
    uscc: str
    region_code: str
    policy_name: str
    amount: Decimal


class DisbursementPaid(EventReader):
    disbursement_id: str
    uscc: str
    region_code: str
    amount: Decimal
    paid_at: datetime | None = None


class PolicyReward(EventReader):
    """A one-time reward a policy grants for a tier (at a title level, or any level when null)."""

    tier: str
    level: str | None = None
    amount: Decimal


class PolicyPublished(EventReader):
    policy_id: str
    name: str
    jurisdiction: str
    kind: str | None = None
    tiers: list[str] = Field(default_factory=list)
    effective_from: date | None = None
    effective_to: date | None = None
    summary: str | None = None
    # optional until finance publishes it: the reward per tier (and level) of a tier_reward policy
    rewards: list[PolicyReward] = Field(default_factory=list)


class Assigned(CommissionerAssigned):
    """Notification reads its own ``commissioner.assigned`` tolerantly."""

    model_config = EventReader.model_config
    previous_commissioner_id: str | None = None


CONSUMED: dict[str, type[BaseModel]] = {
    ENTERPRISE_REGISTERED: EnterpriseChanged,
    ENTERPRISE_UPDATED: EnterpriseChanged,
    ENTERPRISE_DEREGISTERED: Deregistered,
    TIER_RECOGNISED: Recognised,
    TIER_REVOKED: Ended,
    TIER_EXPIRED: Ended,
    RECHECK_DUE: RecheckDue,
    REVIEW_DECIDED: ReviewDecided,
    PUBLICITY_STARTED: PublicityStarted,
    EVALUATION_COMPLETED: EvaluationCompleted,
    ENTITLEMENT_APPROVED: EntitlementApproved,
    DISBURSEMENT_PAID: DisbursementPaid,
    POLICY_PUBLISHED: PolicyPublished,
    ASSIGNED: Assigned,
}
