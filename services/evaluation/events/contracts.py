"""Event contracts of the evaluation service (docs/events.md, evaluation section).

``PUBLISHED``: every event type evaluation writes to ``zjtx.evaluation.events``, with its producer model
(``extra="forbid"``): each payload evaluation emits is built from one of these models. The field order is the
order of the JSON written (the re-evaluation job writes ``evaluation.completed`` as text in the same order;
``tests/evaluation/test_contracts.py`` holds them equal).

``CONSUMED``: the events evaluation reads (registry and agency feeds), with tolerant reader models
(``extra="ignore"``); the handlers parse payloads with them.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel

from shared.events import agency
from shared.events.envelope import EventPayload, EventReader
from shared.indicators import IndicatorSet

# ------------------------------------------------------------------ published

EVALUATION_COMPLETED = "zjtx.evaluation.evaluation.completed.v1"
APPLICATION_SUBMITTED = "zjtx.evaluation.application.submitted.v1"
REVIEW_DECIDED = "zjtx.evaluation.review.decided.v1"
PUBLICITY_STARTED = "zjtx.evaluation.publicity.started.v1"
TIER_RECOGNISED = "zjtx.evaluation.tier.recognised.v1"
TIER_EXPIRED = "zjtx.evaluation.tier.expired.v1"
TIER_REVOKED = "zjtx.evaluation.tier.revoked.v1"
RECHECK_DUE = "zjtx.evaluation.recheck.due.v1"
RULESET_PUBLISHED = "zjtx.evaluation.ruleset.published.v1"

Stage = Literal["county", "city", "province", "national"]
Decision = Literal["approved", "rejected", "returned"]


class GapSummary(EventPayload):
    """One unmet condition's gap (the engine's ``Gap``): what the metric is, what is required, how far short and,
    where money closes it, the yuan needed (2 decimals)."""

    code: str
    description: str
    metric: str | None = None
    unit: str | None = None
    current: str | None = None
    required: str
    shortfall: str | None = None  # the engine's Decimal text, in the metric's unit
    yuan_needed: str | None = None  # 2 decimals


class ResultSummary(EventPayload):
    """One rule set's outcome in ``evaluation.completed``.

    ``level``, ``unmet`` and ``gaps`` were added to v1 as optional fields (older events lack them): the title
    level the rule set decides, the number of unmet conditions and — only when not eligible and at most
    ``EvaluationConfig.gap_event_max_unmet`` conditions are unmet, to keep the event small — their gaps
    (notification's gap advice and the monitor's forecast read them)."""

    ruleset_id: str
    tier: str
    eligible: bool
    score: str | None  # 2 decimals, or null when the rule set does not score
    level: str | None = None
    unmet: int | None = None
    gaps: list[GapSummary] | None = None


class EvaluationCompleted(EventPayload):
    uscc: str
    region_code: str | None
    year: int
    as_of: date
    results: list[ResultSummary]


class ApplicationSubmitted(EventPayload):
    application_id: str
    uscc: str
    region_code: str
    tier: str
    level: str
    batch_year: int


class ReviewDecided(EventPayload):
    application_id: str
    uscc: str
    region_code: str
    tier: str
    stage: Stage
    decision: Decision
    comment: str


class PublicityStarted(EventPayload):
    application_id: str
    uscc: str
    region_code: str
    tier: str
    starts_on: date
    ends_on: date


class TierRecognised(EventPayload):
    recognition_id: str
    uscc: str
    region_code: str
    tier: str
    level: str
    ruleset_id: str | None
    batch_year: int
    announced_on: date
    valid_from: date
    valid_to: date
    renewal: bool
    migrated_in: bool
    # 整体迁入: the day the enterprise moved into ``region_code`` with this title (finance's "operated here one
    # year" rule); only on a re-announcement to the new jurisdiction (migrated_in true)
    moved_in_on: date | None = None


class TierExpired(EventPayload):
    recognition_id: str
    uscc: str
    region_code: str
    tier: str
    level: str
    expired_on: date


class TierRevoked(EventPayload):
    recognition_id: str
    uscc: str
    region_code: str
    tier: str
    level: str
    ground: str
    revoked_on: date
    ban_until: date | None


class RecheckDue(EventPayload):
    recognition_id: str
    uscc: str
    region_code: str
    tier: str
    level: str
    valid_to: date
    due_on: date


class RulesetPublished(EventPayload):
    ruleset_id: str
    version: int
    tier: str
    jurisdiction: str
    effective_from: date | None
    effective_to: date | None


PUBLISHED: dict[str, type[BaseModel]] = {
    EVALUATION_COMPLETED: EvaluationCompleted,
    APPLICATION_SUBMITTED: ApplicationSubmitted,
    REVIEW_DECIDED: ReviewDecided,
    PUBLICITY_STARTED: PublicityStarted,
    TIER_RECOGNISED: TierRecognised,
    TIER_EXPIRED: TierExpired,
    TIER_REVOKED: TierRevoked,
    RECHECK_DUE: RecheckDue,
    RULESET_PUBLISHED: RulesetPublished,
}

# ------------------------------------------------------------------ consumed

REGISTERED = "zjtx.registry.enterprise.registered.v1"
UPDATED = "zjtx.registry.enterprise.updated.v1"
DEREGISTERED = "zjtx.registry.enterprise.deregistered.v1"
INDICATORS = "zjtx.registry.indicators.reported.v1"
LISTING = "zjtx.agency.listing.recorded.v1"
MOVED = "zjtx.registry.enterprise.moved.v1"
CREDIT_LISTED = agency.CREDIT_LISTED
CREDIT_LIFTED = agency.CREDIT_LIFTED


class EnterpriseEvent(EventReader):
    """``registry.enterprise.registered`` / ``updated``: the enterprise facts evaluation keeps."""

    uscc: str
    name: str | None = None
    region_code: str
    industry_code: str | None = None
    is_manufacturing: bool | None = None
    founded_on: date | None = None
    scale: str | None = None
    status: str | None = None
    version: int = 0


class Deregistered(EventReader):
    uscc: str
    region_code: str
    reason: str | None = None
    version: int = 0


class EnterpriseBlock(EventReader):
    name: str | None = None
    founded_on: date | None = None
    industry_code: str | None = None
    is_manufacturing: bool | None = None
    scale: str | None = None


class IndicatorsReported(EventReader):
    uscc: str
    region_code: str
    year: int
    revision: int = 1
    source: str | None = None
    reported_at: datetime | None = None
    enterprise: EnterpriseBlock | None = None
    indicators: IndicatorSet


class ListingRecorded(EventReader):
    uscc: str
    region_code: str | None = None
    listing: str
    agency: str | None = None
    recorded_on: date
    evidence: Any = None


class EnterpriseMoved(EventReader):
    """``registry.enterprise.moved``: the enterprise's region changed (its valid titles follow it)."""

    uscc: str
    from_region_code: str
    to_region_code: str
    moved_on: date


COMMISSIONER_ASSIGNED = "zjtx.notification.commissioner.assigned.v1"
COMMISSIONER_UNAVAILABLE = "zjtx.notification.commissioner.unavailable.v1"
COMMISSIONER_RELEASED = "zjtx.notification.commissioner.released.v1"


class CommissionerAssigned(EventReader):
    """``notification.commissioner.assigned``: the enterprise's current commissioner (服务专员)."""

    uscc: str
    commissioner_id: str
    region_code: str | None = None


class CommissionerUnavailable(EventReader):
    uscc: str
    region_code: str | None = None


class CommissionerReleased(EventReader):
    uscc: str
    region_code: str | None = None
    commissioner_id: str | None = None


CONSUMED: dict[str, type[BaseModel]] = {
    REGISTERED: EnterpriseEvent,
    UPDATED: EnterpriseEvent,
    DEREGISTERED: Deregistered,
    INDICATORS: IndicatorsReported,
    LISTING: ListingRecorded,
    MOVED: EnterpriseMoved,
    CREDIT_LISTED: agency.CreditListedReader,
    CREDIT_LIFTED: agency.CreditLiftedReader,
    COMMISSIONER_ASSIGNED: CommissionerAssigned,
    COMMISSIONER_UNAVAILABLE: CommissionerUnavailable,
    COMMISSIONER_RELEASED: CommissionerReleased,
}
