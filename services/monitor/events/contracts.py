"""Event contracts of the monitor: it publishes nothing and reads every type (the archive keeps each payload as
it came). These tolerant readers (``extra="ignore"``) name the fields its reporting read models use."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from shared.events.envelope import EventReader

ENTERPRISE_REGISTERED = "zjtx.registry.enterprise.registered.v1"
ENTERPRISE_UPDATED = "zjtx.registry.enterprise.updated.v1"
ENTERPRISE_DEREGISTERED = "zjtx.registry.enterprise.deregistered.v1"
POOL_ENTERED = "zjtx.registry.pool.entered.v1"
POOL_EXITED = "zjtx.registry.pool.exited.v1"
TARGET_SET = "zjtx.registry.target.set.v1"
EVALUATION_COMPLETED = "zjtx.evaluation.evaluation.completed.v1"
APPLICATION_SUBMITTED = "zjtx.evaluation.application.submitted.v1"
REVIEW_DECIDED = "zjtx.evaluation.review.decided.v1"
PUBLICITY_STARTED = "zjtx.evaluation.publicity.started.v1"
TIER_RECOGNISED = "zjtx.evaluation.tier.recognised.v1"
TIER_EXPIRED = "zjtx.evaluation.tier.expired.v1"
TIER_REVOKED = "zjtx.evaluation.tier.revoked.v1"
ENTITLEMENT_CREATED = "zjtx.finance.entitlement.created.v1"
ENTITLEMENT_APPROVED = "zjtx.finance.entitlement.approved.v1"
DISBURSEMENT_PAID = "zjtx.finance.disbursement.paid.v1"
RECOVERY_RAISED = "zjtx.finance.recovery.raised.v1"
BUDGET_CHANGED = "zjtx.finance.budget.changed.v1"  # read once finance declares it
COMMISSIONER_ASSIGNED = "zjtx.notification.commissioner.assigned.v1"
COMMISSIONER_RELEASED = "zjtx.notification.commissioner.released.v1"
NOTICE_SENT = "zjtx.notification.notice.sent.v1"


class EnterpriseFacts(EventReader):
    uscc: str
    name: str | None = None
    region_code: str | None = None
    status: str | None = None


class Deregistered(EventReader):
    uscc: str


class PoolMoved(EventReader):
    uscc: str
    region_code: str
    level: str
    pool_region: str
    track: str
    year: int


class TargetSet(EventReader):
    region_code: str
    track: str
    measure: str = "recognised"
    level: str = "any"
    year: int
    target: int = Field(ge=0)


class Gap(EventReader):
    yuan_needed: Decimal | None = None


class ResultSummary(EventReader):
    ruleset_id: str
    tier: str
    eligible: bool
    score: Decimal | None = None
    # optional, when the evaluation publishes them: the unmet conditions (count or list) and the gaps
    unmet: int | list[Any] | None = None
    gaps: list[Gap] | None = None
    yuan_gap: Decimal | None = None


class EvaluationCompleted(EventReader):
    uscc: str
    region_code: str | None = None
    year: int
    as_of: date | None = None
    results: list[ResultSummary] = Field(default_factory=list)


class ApplicationSubmitted(EventReader):
    application_id: str
    uscc: str
    region_code: str
    tier: str
    level: str | None = None
    batch_year: int | None = None


class ReviewDecided(EventReader):
    application_id: str
    uscc: str
    region_code: str
    tier: str
    stage: str
    decision: str


class PublicityStarted(EventReader):
    application_id: str
    uscc: str
    region_code: str
    tier: str


class TierRecognised(EventReader):
    recognition_id: str
    uscc: str
    region_code: str | None = None
    tier: str
    level: str
    batch_year: int | None = None
    valid_from: date | None = None
    valid_to: date | None = None
    application_id: str | None = None


class TierExpired(EventReader):
    recognition_id: str
    uscc: str
    region_code: str | None = None
    tier: str
    level: str
    expired_on: date


class TierRevoked(EventReader):
    recognition_id: str
    uscc: str
    region_code: str | None = None
    tier: str
    level: str
    revoked_on: date


class EntitlementEvent(EventReader):
    entitlement_id: str
    uscc: str
    region_code: str
    jurisdiction: str
    policy_name: str | None = None
    kind: str | None = None
    amount: Decimal
    year: int


class DisbursementPaid(EventReader):
    entitlement_id: str
    uscc: str
    region_code: str
    amount: Decimal


class RecoveryRaised(EventReader):
    entitlement_id: str
    uscc: str
    region_code: str
    amount: Decimal


class BudgetChanged(EventReader):
    jurisdiction: str
    fund: str = "default"
    year: int
    amount: Decimal  # this change (下达/追加)
    total: Decimal | None = None  # the budget after it

    @property
    def budget(self) -> Decimal:
        return self.total if self.total is not None else self.amount


class CommissionerAssigned(EventReader):
    uscc: str
    region_code: str | None = None
    commissioner_id: str
    commissioner_name: str | None = None


class CommissionerReleased(EventReader):
    uscc: str


class NoticeSent(EventReader):
    notice_id: int
    uscc: str | None = None
    region_code: str | None = None
    kind: str
    kind_name: str | None = None
    recipient_kind: str = "enterprise"
    commissioner_id: str | None = None
    tier: str | None = None
    channels: list[str] = Field(default_factory=list)
    year: int
    occurred_at: datetime


PUBLISHED: dict[str, type[BaseModel]] = {}
CONSUMED: dict[str, type[BaseModel]] = {
    ENTERPRISE_REGISTERED: EnterpriseFacts,
    ENTERPRISE_UPDATED: EnterpriseFacts,
    ENTERPRISE_DEREGISTERED: Deregistered,
    POOL_ENTERED: PoolMoved,
    POOL_EXITED: PoolMoved,
    TARGET_SET: TargetSet,
    EVALUATION_COMPLETED: EvaluationCompleted,
    APPLICATION_SUBMITTED: ApplicationSubmitted,
    REVIEW_DECIDED: ReviewDecided,
    PUBLICITY_STARTED: PublicityStarted,
    TIER_RECOGNISED: TierRecognised,
    TIER_EXPIRED: TierExpired,
    TIER_REVOKED: TierRevoked,
    ENTITLEMENT_CREATED: EntitlementEvent,
    ENTITLEMENT_APPROVED: EntitlementEvent,
    DISBURSEMENT_PAID: DisbursementPaid,
    RECOVERY_RAISED: RecoveryRaised,
    BUDGET_CHANGED: BudgetChanged,
    COMMISSIONER_ASSIGNED: CommissionerAssigned,
    COMMISSIONER_RELEASED: CommissionerReleased,
    NOTICE_SENT: NoticeSent,
}
