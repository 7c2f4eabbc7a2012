"""Event contracts of the registry (docs/events.md): a producer model for every event type it publishes
(``extra="forbid"``) and a tolerant reader for every event type it consumes (``PUBLISHED`` / ``CONSUMED``)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

from shared.events import agency
from shared.events.envelope import EventPayload, EventReader

REGISTERED = "zjtx.registry.enterprise.registered.v1"
UPDATED = "zjtx.registry.enterprise.updated.v1"
DEREGISTERED = "zjtx.registry.enterprise.deregistered.v1"
MOVED = "zjtx.registry.enterprise.moved.v1"
INDICATORS_REPORTED = "zjtx.registry.indicators.reported.v1"
POOL_ENTERED = "zjtx.registry.pool.entered.v1"
POOL_EXITED = "zjtx.registry.pool.exited.v1"
TARGET_SET = "zjtx.registry.target.set.v1"

TIER_RECOGNISED = "zjtx.evaluation.tier.recognised.v1"
TIER_EXPIRED = "zjtx.evaluation.tier.expired.v1"
TIER_REVOKED = "zjtx.evaluation.tier.revoked.v1"
EVALUATION_COMPLETED = "zjtx.evaluation.evaluation.completed.v1"
COMMISSIONER_ASSIGNED = "zjtx.notification.commissioner.assigned.v1"
COMMISSIONER_UNAVAILABLE = "zjtx.notification.commissioner.unavailable.v1"
COMMISSIONER_RELEASED = "zjtx.notification.commissioner.released.v1"


class Liaison(EventPayload):
    name: str
    mobile: str
    email: str | None = None


class EnterpriseFacts(EventPayload):
    uscc: str
    name: str
    region_code: str
    industry_code: str
    is_manufacturing: bool
    founded_on: date | None
    scale: str | None
    status: str
    focus: dict[str, Any]
    liaison: Liaison | None
    version: int


class Deregistered(EventPayload):
    uscc: str
    region_code: str
    reason: str
    version: int


class EnterpriseMoved(EventPayload):
    """The enterprise moved to another region (a market-supervision move, or an official's region change): its
    jurisdiction, pools, commissioner and the paying jurisdiction of future entitlements follow. Published with
    the ``enterprise.updated`` that carries the new region."""

    uscc: str
    from_region_code: str
    to_region_code: str
    moved_on: date
    source: str  # "agency:<name>" or the official's sub
    version: int


class EnterpriseBrief(EventPayload):
    name: str
    founded_on: date | None
    industry_code: str
    is_manufacturing: bool
    scale: str | None


class IndicatorsReported(EventPayload):
    uscc: str
    region_code: str
    year: int
    revision: int
    source: str
    reported_at: datetime
    enterprise: EnterpriseBrief
    indicators: dict[str, Any]


class PoolMoved(EventPayload):
    uscc: str
    region_code: str
    pool_id: int
    level: str
    pool_region: str
    track: str
    year: int
    reason: str | None


class TierRecognised(EventReader):
    recognition_id: str
    uscc: str
    region_code: str | None = None
    tier: str
    level: str
    ruleset_id: str | None = None
    batch_year: int | None = None
    announced_on: date | None = None
    valid_from: date
    valid_to: date


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
    ground: str | None = None
    revoked_on: date
    ban_until: date | None = None


class RuleResult(EventReader):
    ruleset_id: str = Field(min_length=1, max_length=200)
    tier: str
    eligible: bool
    score: Any = None


class EvaluationCompleted(EventReader):
    uscc: str
    region_code: str | None = None
    year: int = Field(ge=2000, le=2100)
    as_of: date | None = None
    results: list[RuleResult] = Field(default_factory=list)


class CommissionerAssigned(EventReader):
    uscc: str = Field(min_length=1, max_length=18)
    region_code: str | None = Field(default=None, max_length=6)
    tier: str | None = Field(default=None, max_length=40)
    level: str | None = Field(default=None, max_length=10)
    commissioner_id: str = Field(min_length=1, max_length=64)
    commissioner_name: str | None = None
    previous_commissioner_id: str | None = None
    reason: str | None = None


class CommissionerReleased(EventReader):
    uscc: str = Field(min_length=1, max_length=18)
    region_code: str | None = Field(default=None, max_length=6)
    commissioner_id: str | None = Field(default=None, max_length=100)
    reason: str | None = Field(default=None, max_length=500)


class CommissionerUnavailable(EventReader):
    uscc: str = Field(min_length=1, max_length=18)
    region_code: str | None = Field(default=None, max_length=6)
    tier: str | None = Field(default=None, max_length=40)
    level: str | None = Field(default=None, max_length=10)
    alert_region: str | None = None


class TargetSet(EventPayload):
    """A jurisdiction's target (目标) for a tier, set or changed: how many recognised titles or pool members of a
    level it aims at in a year. Keyed and subjected by the region code (a target belongs to no enterprise)."""

    region_code: str = Field(description="区划代码")
    track: str = Field(description="梯度称号 id (shared.tiers)")
    measure: str = Field(description="recognised 认定数 / pool 入库数")
    level: str = Field(description="称号或培育库层级; any 为不分层级")
    year: int = Field(description="目标年度")
    target: int = Field(ge=0, description="目标数")
    source: str | None = Field(default=None, description="依据文件")


PUBLISHED: dict[str, type[EventPayload]] = {
    REGISTERED: EnterpriseFacts,
    UPDATED: EnterpriseFacts,
    DEREGISTERED: Deregistered,
    MOVED: EnterpriseMoved,
    INDICATORS_REPORTED: IndicatorsReported,
    POOL_ENTERED: PoolMoved,
    POOL_EXITED: PoolMoved,
    TARGET_SET: TargetSet,
}

# the agency feeds registry applies (shared/events/agency.py): 市场监管 and 税务
AGENCY_TYPES = (*agency.MARKET_SUPERVISION, *agency.TAX)

CONSUMED: dict[str, type[BaseModel]] = {
    TIER_RECOGNISED: TierRecognised,
    TIER_EXPIRED: TierExpired,
    TIER_REVOKED: TierRevoked,
    EVALUATION_COMPLETED: EvaluationCompleted,
    COMMISSIONER_ASSIGNED: CommissionerAssigned,
    COMMISSIONER_UNAVAILABLE: CommissionerUnavailable,
    COMMISSIONER_RELEASED: CommissionerReleased,
    **{t: agency.CONSUMED[t] for t in AGENCY_TYPES},
}
