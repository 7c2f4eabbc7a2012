"""Credit listings (信用 feed) as facts of an evaluation: pure logic.

A listing is active from its ``listed_on`` until lifted. While active, its metric (``serious_dishonesty`` /
``abnormal_operation``) is true in the enterprise's indicators, so every rule set whose hard conditions test it
(the 2026 and 2022 MIIT rule sets, 隐形冠军 …) finds the enterprise not eligible and names the unmet condition;
a rule set that does not test it is unaffected (the effect is configured by the rule set itself). An agency's
lifting makes the metric false (the agency's word over a self-report); with no agency word the self-report stays.
"""

from __future__ import annotations

from collections.abc import Iterable, Set
from datetime import date

from services.evaluation.domain.rules import Condition, RuleSet
from shared.indicators import IndicatorSet

# listing → the indicator metric the rule sets test
CREDIT_METRICS: dict[str, str] = {
    "serious_dishonesty": "serious_dishonesty",
    "abnormal_operation": "abnormal_operation",
}
LISTING_NAMES: dict[str, str] = {"serious_dishonesty": "严重失信主体名单", "abnormal_operation": "经营异常名录"}


def overrides(listed: Set[str], cleared: Set[str]) -> dict[str, bool]:
    """The agency's credit word as indicator values: listed → true, lifted (and not listed again) → false."""
    out: dict[str, bool] = {}
    for listing, metric in CREDIT_METRICS.items():
        if listing in listed:
            out[metric] = True
        elif listing in cleared:
            out[metric] = False
    return out


def overlay(indicators: IndicatorSet, listed: Set[str], cleared: Set[str]) -> IndicatorSet:
    """The indicators with the agency's credit word (``overrides``)."""
    update = overrides(listed, cleared)
    return indicators.model_copy(update=update) if update else indicators


def _metrics(conditions: Iterable[Condition]) -> set[str]:
    found: set[str] = set()
    for c in conditions:
        if c.metric is not None:
            found.add(c.metric)
        found |= _metrics(c.any_ or ())
        found |= _metrics(c.all_ or ())
    return found


def blocking_listings(ruleset: RuleSet, listed: Set[str]) -> list[str]:
    """The active listings that make ``ruleset``'s hard conditions fail (in a stable order)."""
    tested = _metrics(ruleset.hard_conditions)
    return [listing for listing, metric in CREDIT_METRICS.items() if listing in listed and metric in tested]


def is_active(listed_on: date, lifted_on: date | None, on: date) -> bool:
    return listed_on <= on and (lifted_on is None or lifted_on > on)
