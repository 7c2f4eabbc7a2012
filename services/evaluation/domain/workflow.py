"""Recognition workflow as pure code: states, actions, who acts at which stage, validity and working days.

Chain of review stages by the level of the title applied for:
- county title:   county decides;
- city title:     county → city decides;
- province title: county → city → province decides;
- national title: county → city → province recommends → national result recorded (by a province official).
The deciding stage's approval opens publicity (公示); objections lodged meanwhile must be resolved before
the announcement (公告), which creates the recognition (valid_from = announcement date, valid_to = +3 years
− 1 day, decision 5).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum


class State(StrEnum):
    SUBMITTED = "submitted"  # 已申报, awaiting county review
    COUNTY_APPROVED = "county_approved"  # 县级审核通过, awaiting city review
    CITY_APPROVED = "city_approved"  # 市级审核通过, awaiting province decision
    PROVINCE_RECOMMENDED = "province_recommended"  # 省级推荐, awaiting national result
    PUBLICITY = "publicity"  # 公示中
    RECOGNISED = "recognised"  # 已公告认定
    REJECTED = "rejected"  # 未通过
    RETURNED = "returned"  # 退回修改
    WITHDRAWN = "withdrawn"  # 已撤回


class Action(StrEnum):
    REVIEW_COUNTY = "review_county"
    REVIEW_CITY = "review_city"
    REVIEW_PROVINCE = "review_province"
    RECORD_NATIONAL = "record_national"
    LODGE_OBJECTION = "lodge_objection"
    RESOLVE_OBJECTION = "resolve_objection"
    ANNOUNCE = "announce"
    RESUBMIT = "resubmit"
    WITHDRAW = "withdraw"


class Decision(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"
    RETURNED = "returned"


STATE_ZH: dict[State, str] = {
    State.SUBMITTED: "已申报(待县级审核)",
    State.COUNTY_APPROVED: "县级审核通过(待市级审核)",
    State.CITY_APPROVED: "市级审核通过(待省级审定)",
    State.PROVINCE_RECOMMENDED: "省级已推荐(待国家认定结果)",
    State.PUBLICITY: "公示中",
    State.RECOGNISED: "已公告认定",
    State.REJECTED: "未通过",
    State.RETURNED: "已退回",
    State.WITHDRAWN: "已撤回",
}

LEVELS = ("county", "city", "province", "national")
TERMINAL = frozenset({State.RECOGNISED, State.REJECTED, State.WITHDRAWN})
VALIDITY_YEARS = 3

# Review stage → (state it is taken in, the action, the reviewing level)
_STAGES: tuple[tuple[str, State, Action], ...] = (
    ("county", State.SUBMITTED, Action.REVIEW_COUNTY),
    ("city", State.COUNTY_APPROVED, Action.REVIEW_CITY),
    ("province", State.CITY_APPROVED, Action.REVIEW_PROVINCE),
    ("national", State.PROVINCE_RECOMMENDED, Action.RECORD_NATIONAL),
)
_APPROVED_STATE: dict[str, State] = {
    "county": State.COUNTY_APPROVED,
    "city": State.CITY_APPROVED,
    "province": State.PROVINCE_RECOMMENDED,
}


class InvalidTransition(Exception):
    """The action is not allowed in the current state; ``allowed`` lists what is."""

    def __init__(self, state: State, action: Action, allowed: list[Action]) -> None:
        super().__init__(f"{action.value} not allowed in state {state.value}")
        self.state = state
        self.action = action
        self.allowed = allowed


def stages_for(level: str) -> list[str]:
    """The review stages an application for a title of ``level`` passes through, in order."""
    if level not in LEVELS:
        raise ValueError(f"unknown level {level}")
    return list(LEVELS[: LEVELS.index(level) + 1])


def stage_of_action(action: Action) -> str | None:
    for stage, _, act in _STAGES:
        if act == action:
            return stage
    return None


def allowed_actions(
    state: State, level: str, open_objections: int = 0, prerequisites_met: bool = True
) -> list[Action]:
    """Every action allowed in ``state`` for an application for a title of ``level``; with the prerequisites
    unmet on the decision date the announcement is not offered (it would be refused)."""
    stages = stages_for(level)
    out: list[Action] = []
    for stage, in_state, action in _STAGES:
        if stage in stages and state == in_state:
            out.append(action)
    if state == State.PUBLICITY:
        out.append(Action.LODGE_OBJECTION)
        if open_objections > 0:
            out.append(Action.RESOLVE_OBJECTION)
        elif prerequisites_met:
            out.append(Action.ANNOUNCE)
    if state == State.RETURNED:
        out.append(Action.RESUBMIT)
    if state not in TERMINAL and state != State.PUBLICITY:
        out.append(Action.WITHDRAW)
    return out


def allowed_decisions(
    state: State, level: str, open_objections: int = 0, prerequisites_met: bool = True
) -> dict[str, list[str]]:
    """For each review action allowed in ``state``, the decisions it accepts: approving at the deciding stage
    needs the prerequisites met (otherwise it is refused), rejecting or returning does not."""
    deciding = stages_for(level)[-1]
    out: dict[str, list[str]] = {}
    for action in allowed_actions(state, level, open_objections):
        stage = stage_of_action(action)
        if stage is None:
            continue
        out[action.value] = [
            d.value for d in Decision if prerequisites_met or stage != deciding or d != Decision.APPROVED
        ]
    return out


def prerequisites_matter(state: State, level: str, open_objections: int = 0) -> bool:
    """Whether a next step allowed in ``state`` checks the prerequisites (the deciding review, the announcement)."""
    deciding = stages_for(level)[-1]
    return any(
        action == Action.ANNOUNCE or stage_of_action(action) == deciding
        for action in allowed_actions(state, level, open_objections)
    )


@dataclass(frozen=True)
class Outcome:
    state: State
    publicity_opened: bool = False  # the deciding stage approved: publicity starts
    final_decision: bool = False  # the step was the deciding stage (prerequisites are checked)


def transition(
    state: State, action: Action, level: str, decision: Decision | None = None, open_objections: int = 0
) -> Outcome:
    """Apply ``action``; raises ``InvalidTransition`` listing the allowed actions."""
    allowed = allowed_actions(state, level, open_objections)
    if action not in allowed:
        raise InvalidTransition(state, action, allowed)
    stage = stage_of_action(action)
    if stage is not None:
        if decision is None:
            raise ValueError("a review needs a decision")
        deciding = stage == stages_for(level)[-1]
        if decision == Decision.REJECTED:
            return Outcome(State.REJECTED, final_decision=deciding)
        if decision == Decision.RETURNED:
            return Outcome(State.RETURNED)
        if deciding:
            return Outcome(State.PUBLICITY, publicity_opened=True, final_decision=True)
        return Outcome(_APPROVED_STATE[stage])
    if action == Action.ANNOUNCE:
        return Outcome(State.RECOGNISED)
    if action == Action.RESUBMIT:
        return Outcome(State.SUBMITTED)
    if action == Action.WITHDRAW:
        return Outcome(State.WITHDRAWN)
    return Outcome(state)  # objections do not move the state by themselves


STAGE_ZH: dict[str, str] = {"county": "县级", "city": "市级", "province": "省级", "national": "国家认定结果登记"}
_REVIEW_STEPS = frozenset(f"review_{stage}" for stage in LEVELS)
_SUBMIT_STEPS = frozenset({"submit", Action.RESUBMIT.value})


def duty_conflict(history: Sequence[Mapping[str, object]], sub: str, stage: str) -> str | None:
    """Separation of duties (issue 16): why ``sub`` may not take the review ``stage`` of an application with this
    ``history`` (Chinese), or None. Whoever submitted or resubmitted it reviews none of its stages, and one person
    takes at most one review stage (a stage taken again after a return is the same step)."""
    for step in history:
        if step.get("by") != sub:
            continue
        action = step.get("action")
        if action in _SUBMIT_STEPS:
            return "提交(或重新提交)本申请的人员不能审核同一申请 (separation of duties: submitter cannot review)"
        if action in _REVIEW_STEPS and action != f"review_{stage}":
            done = STAGE_ZH.get(str(action).removeprefix("review_"), str(action))
            return (f"您已办理本申请的{done}审核,同一人员不能再办理{STAGE_ZH.get(stage, stage)}审核"
                    " (separation of duties: one person takes one review step)")
    return None


def reviewer_level(action: Action) -> str | None:
    """The official level that takes a review action (national results are recorded by the province)."""
    stage = stage_of_action(action)
    if stage == "national":
        return "province"
    return stage


def add_years(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February
        return d.replace(year=d.year + years, day=28)


def validity(announced_on: date, years: int = VALIDITY_YEARS) -> tuple[date, date]:
    """Decision 5: valid_from = announcement date; valid_to = valid_from + 3 years − 1 day."""
    return announced_on, add_years(announced_on, years) - timedelta(days=1)


def add_working_days(start: date, days: int) -> date:
    """The date ``days`` working days after ``start`` (Monday–Friday; public holidays not modelled)."""
    d = start
    left = days
    while left > 0:
        d += timedelta(days=1)
        if d.weekday() < 5:
            left -= 1
    return d


def publicity_window(starts_on: date, working_days: int) -> tuple[date, date]:
    """公示 from ``starts_on`` for ``working_days`` working days (the start day counts if a working day)."""
    if working_days <= 0:
        return starts_on, starts_on
    first = starts_on
    while first.weekday() >= 5:
        first += timedelta(days=1)
    return starts_on, add_working_days(first, working_days - 1)


REVOCATION_GROUNDS: dict[str, str] = {
    "data_fraud": "数据或材料造假",
    "serious_dishonesty": "列入严重失信主体名单",
    "major_accident": "发生重大安全、质量、环境污染事故",
    "other": "其他违法违规情形",
}
LADDER_TIERS = frozenset({"innovative", "srdi", "little_giant"})
BAN_YEARS = 3


def revocation_scope(ground: str, tier: str) -> str:
    """``ladder`` when data fraud revokes every title of the MIIT ladder (decision 7), else ``single``."""
    if ground not in REVOCATION_GROUNDS:
        raise ValueError(f"unknown ground {ground}")
    return "ladder" if ground == "data_fraud" else "single"


def ban_until(ground: str, revoked_on: date) -> date | None:
    """Data fraud bars reapplication for 3 years."""
    if ground == "data_fraud":
        return add_years(revoked_on, BAN_YEARS) - timedelta(days=1)
    return None


LISTING_TO_GROUND: dict[str, str] = {
    "data_fraud": "data_fraud",
    "serious_dishonesty": "serious_dishonesty",
    "major_accident": "major_accident",
}


def recheck_due_on(valid_to: date, lead_days: int = 90) -> date:
    """When recheck.due is emitted: ``lead_days`` before expiry."""
    return valid_to - timedelta(days=lead_days)


def default_level(tier: str) -> str:
    """The level a title of ``tier`` is normally recognised at (MIIT tiers: national)."""
    return {
        "innovative": "province",
        "srdi": "province",
        "little_giant": "national",
        "hidden_champion": "province",
        "single_champion": "national",
        "single_champion_product": "national",
    }.get(tier, "province")


TIERS = ("innovative", "srdi", "little_giant", "hidden_champion", "single_champion", "single_champion_product")
