"""Event payloads finance produces (docs/events.md, finance section) and reads (evaluation tier events)."""

from __future__ import annotations

from datetime import date

from pydantic import AliasChoices, BaseModel, Field

from shared.events.envelope import EventPayload, EventReader

POLICY_PUBLISHED = "zjtx.finance.policy.published.v1"
ENTITLEMENT_CREATED = "zjtx.finance.entitlement.created.v1"
ENTITLEMENT_APPROVED = "zjtx.finance.entitlement.approved.v1"
DISBURSEMENT_PAID = "zjtx.finance.disbursement.paid.v1"
DISBURSEMENT_FAILED = "zjtx.finance.disbursement.failed.v1"
RECOVERY_RAISED = "zjtx.finance.recovery.raised.v1"
BUDGET_CHANGED = "zjtx.finance.budget.changed.v1"

TIER_RECOGNISED = "zjtx.evaluation.tier.recognised.v1"
TIER_REVOKED = "zjtx.evaluation.tier.revoked.v1"
TIER_EXPIRED = "zjtx.evaluation.tier.expired.v1"


class PolicyReward(EventPayload):
    """A tier_reward policy's one-time reward for a tier (at a title level, or any level when null)."""

    tier: str
    level: str | None
    amount: str


class PolicyPublished(EventPayload):
    policy_id: str
    name: str
    jurisdiction: str
    kind: str
    tiers: list[str]
    effective_from: date
    effective_to: date | None
    summary: str
    fund: str | None = None
    rewards: list[PolicyReward] = Field(default_factory=list)


class EntitlementEvent(EventPayload):
    """``entitlement.created`` / ``entitlement.approved``: what is due, to whom, from which jurisdiction's fund."""

    entitlement_id: str
    uscc: str
    region_code: str
    jurisdiction: str
    policy_id: str
    policy_name: str
    kind: str
    amount: str
    year: int
    fund: str | None = None
    status: str | None = None
    # tier_reward entitlements: the title rewarded (tier id of shared.tiers and its level); null for projects
    tier: str | None = None
    level: str | None = None


class DisbursementPaid(EventPayload):
    disbursement_id: str
    entitlement_id: str
    uscc: str
    region_code: str
    amount: str
    paid_at: str
    jurisdiction: str | None = None
    fund: str | None = None
    year: int | None = None


class DisbursementFailed(EventPayload):
    disbursement_id: str
    entitlement_id: str
    uscc: str
    region_code: str
    amount: str
    error: str
    jurisdiction: str | None = None
    fund: str | None = None
    year: int | None = None


class RecoveryRaised(EventPayload):
    entitlement_id: str
    recovery_id: str
    uscc: str
    region_code: str
    amount: str
    reason: str
    jurisdiction: str | None = None
    fund: str | None = None
    year: int | None = None


class BudgetChanged(EventPayload):
    """An approved budget change (下达/追加) of one jurisdiction, fund channel and year, with the budget after it.
    Key: the jurisdiction (a budget belongs to no enterprise)."""

    change_id: str
    jurisdiction: str
    fund: str
    year: int
    amount: str  # this change
    total: str  # the budget's total after it
    reserved: str  # approved entitlements not yet paid
    spent: str  # paid, net of recoveries repaid
    available: str
    requested_by: str
    approved_by: str


class TierRecognised(EventReader):
    recognition_id: str
    uscc: str
    region_code: str
    tier: str
    level: str | None = None
    ruleset_id: str | None = None
    batch_year: int
    announced_on: date | None = None
    valid_from: date | None = None
    valid_to: date | None = None
    renewal: bool = False
    # 整体迁入: the enterprise moved into ``region_code`` holding this title (registry's region change or the
    # market-supervision move); ``moved_in_on`` is the day it moved, for the policy's "operated here one year".
    migrated_in: bool = False
    moved_in_on: date | None = Field(None, validation_alias=AliasChoices("moved_in_on", "moved_on", "migrated_on"))


class TierRevoked(EventReader):
    recognition_id: str
    uscc: str
    region_code: str
    tier: str
    level: str | None = None
    ground: str = ""
    revoked_on: date | None = None


class TierExpired(EventReader):
    recognition_id: str
    uscc: str
    region_code: str
    tier: str
    level: str | None = None
    expired_on: date | None = None


# Event type → producer model (``extra="forbid"``): every payload finance emits is built from one of these.
PUBLISHED: dict[str, type[BaseModel]] = {
    POLICY_PUBLISHED: PolicyPublished,
    ENTITLEMENT_CREATED: EntitlementEvent,
    ENTITLEMENT_APPROVED: EntitlementEvent,
    DISBURSEMENT_PAID: DisbursementPaid,
    DISBURSEMENT_FAILED: DisbursementFailed,
    RECOVERY_RAISED: RecoveryRaised,
    BUDGET_CHANGED: BudgetChanged,
}

# Event type → consumer model (tolerant reader, ``extra="ignore"``).
CONSUMED: dict[str, type[BaseModel]] = {
    TIER_RECOGNISED: TierRecognised,
    TIER_REVOKED: TierRevoked,
    TIER_EXPIRED: TierExpired,
}
