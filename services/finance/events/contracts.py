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

TIER_RECOGNISED = "zjtx.evaluation.tier.recognised.v1"
TIER_REVOKED = "zjtx.evaluation.tier.revoked.v1"
TIER_EXPIRED = "zjtx.evaluation.tier.expired.v1"


class PolicyPublished(EventPayload):
    policy_id: str
    name: str
    jurisdiction: str
    kind: str
    tiers: list[str]
    effective_from: date
    effective_to: date | None
    summary: str


class EntitlementEvent(EventPayload):
    entitlement_id: str
    uscc: str
    region_code: str
    jurisdiction: str
    policy_id: str
    policy_name: str
    kind: str
    amount: str
    year: int


class DisbursementPaid(EventPayload):
    disbursement_id: str
    entitlement_id: str
    uscc: str
    region_code: str
    amount: str
    paid_at: str


class DisbursementFailed(EventPayload):
    disbursement_id: str
    entitlement_id: str
    uscc: str
    region_code: str
    amount: str
    error: str


class RecoveryRaised(EventPayload):
    entitlement_id: str
    recovery_id: str
    uscc: str
    region_code: str
    amount: str
    reason: str


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
    moved_in_on: date | None = Field(None, validation_alias=AliasChoices("moved_in_on", "migrated_on"))


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
}

# Event type → consumer model (tolerant reader, ``extra="ignore"``).
CONSUMED: dict[str, type[BaseModel]] = {
    TIER_RECOGNISED: TierRecognised,
    TIER_REVOKED: TierRevoked,
    TIER_EXPIRED: TierExpired,
}
