"""USCC validator (GB 32100-2015) with the examples of domain.md §4."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.registry.domain.uscc import CHARSET, USCCError, make_uscc, org_check_char, validate_uscc


@pytest.mark.parametrize(
    "code", ["914403001922038216", "91330100716105852F", "91512081MA62K0260E", "91310000132260250X"]
)
def test_verified_examples_pass(code: str) -> None:
    result = validate_uscc(code)
    assert result.code == code
    assert result.warnings == []


def test_position_18_failure_is_named() -> None:
    with pytest.raises(USCCError) as exc:
        validate_uscc("91350203M0001QAY9B")
    assert exc.value.position == 18
    assert "第18位" in exc.value.message and "“9”" in exc.value.message


def test_mock_value_fails_position_17_first() -> None:
    with pytest.raises(USCCError) as exc:
        validate_uscc("9133010057462616XH")
    assert exc.value.position == 17


def test_org_code_worked_example() -> None:
    assert org_check_char("59467239") == "9"


@pytest.mark.parametrize(
    ("code", "position"),
    [
        ("91330100716105852", 0),
        ("91330100716105852FF", 0),
        ("9133010071610585IF", 17),
        ("913301O0716105852F", 7),
        ("91AB0100716105852F", 3),
    ],
)
def test_bad_shapes(code: str, position: int) -> None:
    with pytest.raises(USCCError) as exc:
        validate_uscc(code)
    assert exc.value.position == position


def test_lowercase_and_spaces_normalised() -> None:
    assert validate_uscc(" 91330100716105852f ").code == "91330100716105852F"


def test_unknown_department_and_division_warn_only() -> None:
    code = make_uscc("440300", "MA5DABCD", department="A", category="1")
    result = validate_uscc(code, known_divisions={"330110", "330181"})
    assert len(result.warnings) == 2
    assert any("第1位" in w for w in result.warnings)
    assert any("440300" in w for w in result.warnings)


def test_retired_division_known() -> None:
    code = make_uscc("330181", "14370135")  # old 萧山市 registration
    assert validate_uscc(code, known_divisions={"330181"}).warnings == []


@given(st.text(alphabet=CHARSET, min_size=8, max_size=8), st.sampled_from(["330110", "331102", "330100"]))
def test_generated_codes_validate_and_any_single_change_is_caught(body: str, division: str) -> None:
    code = make_uscc(division, body)
    assert validate_uscc(code).code == code
    last = CHARSET[(CHARSET.index(code[17]) + 1) % 31]
    with pytest.raises(USCCError):
        validate_uscc(code[:17] + last)
