"""Pure tests of the recognition state machine, validity and publicity dates (no I/O)."""

from __future__ import annotations

from datetime import date

import pytest

from services.evaluation.domain import workflow as wf
from services.evaluation.domain.workflow import Action, Decision, State


def walk(level: str) -> list[State]:
    state = State.SUBMITTED
    seen = [state]
    for stage in wf.stages_for(level):
        action = {"county": Action.REVIEW_COUNTY, "city": Action.REVIEW_CITY,
                  "province": Action.REVIEW_PROVINCE, "national": Action.RECORD_NATIONAL}[stage]
        state = wf.transition(state, action, level, Decision.APPROVED).state
        seen.append(state)
    state = wf.transition(state, Action.ANNOUNCE, level).state
    seen.append(state)
    return seen


def test_province_chain() -> None:
    assert walk("province") == [
        State.SUBMITTED, State.COUNTY_APPROVED, State.CITY_APPROVED, State.PUBLICITY, State.RECOGNISED,
    ]


def test_national_chain_has_recommendation() -> None:
    assert walk("national") == [
        State.SUBMITTED, State.COUNTY_APPROVED, State.CITY_APPROVED, State.PROVINCE_RECOMMENDED,
        State.PUBLICITY, State.RECOGNISED,
    ]


def test_county_title_decided_by_county() -> None:
    assert walk("county") == [State.SUBMITTED, State.PUBLICITY, State.RECOGNISED]
    out = wf.transition(State.SUBMITTED, Action.REVIEW_COUNTY, "county", Decision.APPROVED)
    assert out.publicity_opened and out.final_decision


def test_invalid_transition_lists_allowed() -> None:
    with pytest.raises(wf.InvalidTransition) as exc:
        wf.transition(State.SUBMITTED, Action.REVIEW_CITY, "province", Decision.APPROVED)
    assert exc.value.allowed == [Action.REVIEW_COUNTY, Action.WITHDRAW]
    with pytest.raises(wf.InvalidTransition):
        wf.transition(State.CITY_APPROVED, Action.RECORD_NATIONAL, "province", Decision.APPROVED)
    with pytest.raises(wf.InvalidTransition):
        wf.transition(State.RECOGNISED, Action.WITHDRAW, "province")


def test_objections_block_announcement() -> None:
    assert Action.ANNOUNCE not in wf.allowed_actions(State.PUBLICITY, "province", open_objections=1)
    with pytest.raises(wf.InvalidTransition) as exc:
        wf.transition(State.PUBLICITY, Action.ANNOUNCE, "province", open_objections=2)
    assert Action.RESOLVE_OBJECTION in exc.value.allowed


def test_reject_and_return() -> None:
    assert wf.transition(State.SUBMITTED, Action.REVIEW_COUNTY, "province", Decision.REJECTED).state == State.REJECTED
    returned = wf.transition(State.COUNTY_APPROVED, Action.REVIEW_CITY, "province", Decision.RETURNED).state
    assert returned == State.RETURNED
    assert wf.transition(returned, Action.RESUBMIT, "province").state == State.SUBMITTED


def test_validity_decision_5() -> None:
    assert wf.validity(date(2025, 6, 30)) == (date(2025, 6, 30), date(2028, 6, 29))
    assert wf.validity(date(2024, 2, 29)) == (date(2024, 2, 29), date(2027, 2, 27))
    assert wf.validity(date(2025, 1, 1))[1] == date(2027, 12, 31)


def test_publicity_working_days() -> None:
    # Friday 2025-11-21 + 5 working days → Thursday 2025-11-27
    assert wf.publicity_window(date(2025, 11, 21), 5) == (date(2025, 11, 21), date(2025, 11, 27))
    # starting on Saturday: first working day is Monday
    assert wf.publicity_window(date(2025, 11, 22), 1) == (date(2025, 11, 22), date(2025, 11, 24))
    assert wf.publicity_window(date(2025, 11, 22), 0) == (date(2025, 11, 22), date(2025, 11, 22))


def test_revocation_scope_and_ban() -> None:
    assert wf.revocation_scope("data_fraud", "srdi") == "ladder"
    assert wf.revocation_scope("major_accident", "srdi") == "single"
    assert wf.ban_until("data_fraud", date(2026, 3, 1)) == date(2029, 2, 28)
    assert wf.ban_until("serious_dishonesty", date(2026, 3, 1)) is None
    with pytest.raises(ValueError):
        wf.revocation_scope("bad_mood", "srdi")


def test_reviewer_levels() -> None:
    assert wf.reviewer_level(Action.RECORD_NATIONAL) == "province"
    assert wf.reviewer_level(Action.REVIEW_CITY) == "city"
    assert wf.default_level("little_giant") == "national"
    assert wf.recheck_due_on(date(2028, 6, 29)) == date(2028, 3, 31)
