"""The commissioner assignment rule (pure)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.notification.domain.assignment import (
    Candidate,
    alert_role,
    pick_commissioner,
    required_level,
    target_region,
)
from shared.tiers import TIER_RANK, highest_tier


def test_county_tiers_go_to_the_county() -> None:
    assert required_level(["srdi"], "330110") == ("srdi", "county")
    assert required_level(["innovative"], "331121") == ("innovative", "county")
    assert target_region("county", "330110") == "330110"


def test_city_tiers_go_to_the_city() -> None:
    for tier in ("hidden_champion", "little_giant", "single_champion", "single_champion_product"):
        assert required_level([tier], "330110") == (tier, "city")
    assert target_region("city", "330110") == "330100"
    assert target_region("city", "331127") == "331100"


def test_highest_tier_decides_level() -> None:
    assert required_level(["srdi", "little_giant"], "330109") == ("little_giant", "city")
    assert required_level(["innovative", "srdi"], "330109") == ("srdi", "county")
    assert required_level([], "330109") is None
    assert required_level(["unknown"], "330109") is None
    assert highest_tier(["srdi", "single_champion", "little_giant"]) == "single_champion"


def test_rule_is_configurable_per_province() -> None:
    rules = {"320000": {"srdi": "city"}}
    assert required_level(["srdi"], "320102", rules) == ("srdi", "city")
    assert required_level(["srdi"], "330102", rules) == ("srdi", "county")  # falls back to the default rule


def test_pick_least_loaded_within_capacity() -> None:
    cands = [Candidate("a", 3, 5), Candidate("b", 1, 5), Candidate("c", 0, 0), Candidate("d", 0, 5, active=False)]
    assert pick_commissioner(cands) == Candidate("b", 1, 5)
    assert pick_commissioner(cands, exclude={"b"}) == Candidate("a", 3, 5)
    assert pick_commissioner([Candidate("a", 5, 5)]) is None
    assert pick_commissioner([]) is None


def test_alert_role() -> None:
    assert alert_role("city") == "city_official"
    assert alert_role("county") == "county_official"


@given(st.lists(st.tuples(st.integers(0, 10), st.integers(0, 10)), max_size=8))
def test_pick_never_exceeds_capacity(pairs: list[tuple[int, int]]) -> None:
    cands = [Candidate(f"c{i}", load, cap) for i, (load, cap) in enumerate(pairs)]
    chosen = pick_commissioner(cands)
    free = [c for c in cands if c.load < c.capacity]
    if not free:
        assert chosen is None
    else:
        assert chosen is not None and chosen.load < chosen.capacity
        assert chosen.load == min(c.load for c in free)


@given(st.lists(st.sampled_from(TIER_RANK), min_size=1))
def test_level_is_city_iff_a_city_tier_is_held(tiers: list[str]) -> None:
    result = required_level(tiers, "330110")
    assert result is not None
    city = {"hidden_champion", "little_giant", "single_champion", "single_champion_product"}
    assert (result[1] == "city") == bool(city & set(tiers))
    assert result[0] in tiers
