"""Worked cases from the city programme (003): 从高不重复, upgrades, caps, percentages — pure, no I/O."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.finance.domain import entitlement as calc
from services.finance.domain.money import q
from services.finance.domain.policy import Policy

D = Decimal


def city(upgrade: str = "pay_difference", stacking: str = "highest_only", migrated_in: str = "as_new") -> Policy:
    return Policy(
        id="330100-tier",
        name="市专精特新新认定奖励",
        jurisdiction="330100",
        fund="sme_development",
        kind="tier_reward",
        effective_from=date(2022, 1, 1),
        document="policy/003",
        tiers={
            "little_giant:national": D("2000000"),
            "srdi:province": D("500000"),
            "single_champion": D("5000000"),
            "single_champion_product": D("1000000"),
        },
        stacking=stacking,  # type: ignore[arg-type]
        upgrade=upgrade,  # type: ignore[arg-type]
        migrated_in=migrated_in,  # type: ignore[arg-type]
    )


def prior(subject: str, ref: str, granted: str, year: int) -> calc.PriorAward:
    return calc.PriorAward(subject=subject, reference=D(ref), granted=D(granted), year=year)


def test_new_srdi_gets_500k() -> None:
    c = calc.tier_reward(city(), "srdi", "province", prior=[])
    assert c.amount == D("500000.00")
    assert any("500,000.00" in s for s in c.steps)


def test_srdi_then_little_giant_two_years_later_pays_difference() -> None:
    c = calc.tier_reward(
        city(), "little_giant", "national", prior=[prior("tier:srdi:province", "500000", "500000", 2022)]
    )
    assert c.amount == D("1500000.00")
    assert c.rule == "upgrade_pay_difference"
    assert c.deducted == D("500000.00")
    assert "1,500,000.00" in c.steps[-1]


def test_srdi_then_little_giant_under_nothing_pays_nothing() -> None:
    c = calc.tier_reward(
        city("nothing"), "little_giant", "national", prior=[prior("tier:srdi:province", "500000", "500000", 2022)]
    )
    assert c.amount == D("0")
    assert c.rule == "upgrade_nothing"


def test_single_champion_5m_and_lower_title_later_gets_nothing() -> None:
    first = calc.tier_reward(city(), "single_champion", "national", prior=[])
    assert first.amount == D("5000000.00")
    later = calc.tier_reward(
        city(), "little_giant", "national", prior=[prior("tier:single_champion:national", "5000000", "5000000", 2023)]
    )
    assert later.amount == D("0")
    assert later.rule == "highest_only_not_higher"


def test_champion_after_srdi_and_little_giant_pays_remaining_difference() -> None:
    p = [
        prior("tier:srdi:province", "500000", "500000", 2022),
        prior("tier:little_giant:national", "2000000", "1500000", 2024),
    ]
    c = calc.tier_reward(city(), "single_champion", "national", prior=p)
    assert c.amount == D("3000000.00")  # 5,000,000 − (500,000 + 1,500,000)


def test_cumulative_policy_pays_full() -> None:
    c = calc.tier_reward(
        city(stacking="cumulative"),
        "little_giant",
        "national",
        prior=[prior("tier:srdi:province", "500000", "500000", 2022)],
    )
    assert c.amount == D("2000000.00")


def test_renewal_is_not_new_recognition() -> None:
    c = calc.tier_reward(city(), "srdi", "province", prior=[], renewal=True)
    assert c.amount == 0 and c.rule == "renewal_not_new"


def test_migrated_in_rule() -> None:
    moved = {"migrated_in": True, "moved_in_on": date(2024, 2, 29)}
    c = calc.tier_reward(city(), "srdi", "province", prior=[], as_of=date(2025, 2, 28), **moved)  # type: ignore[arg-type]
    assert c.amount == D("500000.00")
    c = calc.tier_reward(city(), "srdi", "province", prior=[], as_of=date(2025, 2, 27), **moved)  # type: ignore[arg-type]
    assert c.amount == 0 and c.rule == "migrated_in_under_one_year" and c.rule in calc.NOT_YET_DUE
    c = calc.tier_reward(city(), "srdi", "province", prior=[], migrated_in=True)
    assert c.amount == 0 and c.rule == "migrated_in_unverified"
    excluded = calc.tier_reward(
        city(migrated_in="excluded"),
        "srdi",
        "province",
        prior=[],
        as_of=date(2026, 1, 1),
        **moved,  # type: ignore[arg-type]
    )
    assert excluded.amount == 0 and excluded.rule == "migrated_in_excluded"


def test_tier_not_covered_is_not_applicable() -> None:
    with pytest.raises(calc.NotApplicable):
        calc.tier_reward(city(), "innovative", "province", prior=[])
    with pytest.raises(calc.NotApplicable):
        calc.tier_reward(city(), "srdi", "city", prior=[])  # only 省级 srdi is rewarded


def pct(rate: str, cap: str | None = None, scope: str = "project", threshold: str | None = None) -> Policy:
    return Policy(
        id="p",
        name="比例",
        jurisdiction="330109",
        fund="f",
        kind="percentage",
        effective_from=date(2022, 1, 1),
        rate=D(rate),
        cap=D(cap) if cap else None,
        cap_scope=scope,  # type: ignore[arg-type]
        threshold=D(threshold) if threshold else None,
    )


def test_digital_transformation_20_percent() -> None:
    assert calc.percentage(pct("0.20"), D("1234567.89")).amount == D("246913.58")  # 246913.578 → HALF_UP


def test_first_set_10_percent_capped_per_enterprise() -> None:
    p = pct("0.10", "3000000", "enterprise")
    assert calc.percentage(p, D("20000000")).amount == D("2000000.00")
    second = calc.percentage(p, D("20000000"), previously_granted=D("2000000"))
    assert second.amount == D("1000000.00") and second.rule == "percentage_capped"
    assert calc.percentage(p, D("5000000"), previously_granted=D("3000000")).amount == 0


def test_overseas_rd_threshold_strictly_above_10m_and_cap_5m() -> None:
    p = pct("0.05", "5000000", "enterprise", "10000000")
    assert calc.percentage(p, D("10000000")).amount == 0  # 高于 excludes the edge
    assert calc.percentage(p, D("10000000.01")).amount == D("500000.00")
    assert calc.percentage(p, D("200000000")).amount == D("5000000.00")
    assert calc.percentage(p, D("8000000"), threshold_value=D("12000000")).amount == D("400000.00")


def test_fixed_award_and_per_person() -> None:
    fa = Policy(
        id="f",
        name="定额",
        jurisdiction="330109",
        fund="f",
        kind="fixed_award",
        effective_from=date(2022, 1, 1),
        items={"省级未来工厂": D("3000000")},
    )
    assert calc.fixed_award(fa, "省级未来工厂").amount == D("3000000.00")
    pp = Policy(
        id="t",
        name="培训",
        jurisdiction="330100",
        fund="talent",
        kind="per_person",
        effective_from=date(2022, 1, 1),
        items={"新培养技师": D("3000"), "高级技师": D("4000"), "高级技师提升培训": D("2000")},
    )
    c = calc.per_person(pp, {"新培养技师": 10, "高级技师": 3, "高级技师提升培训": 7})
    assert c.amount == D("56000.00")
    with pytest.raises(calc.NotApplicable):
        calc.per_person(pp, {"博士": 1})


amounts = st.decimals(min_value=D("0.01"), max_value=D("100000000"), places=2)
TIERS = [
    ("srdi", "province"),
    ("little_giant", "national"),
    ("single_champion_product", None),
    ("single_champion", None),
]


@given(st.lists(st.sampled_from(TIERS), min_size=1, max_size=6), st.sampled_from(["pay_difference", "nothing"]))
def test_highest_only_never_pays_more_than_highest_tier(seq: list[tuple[str, str | None]], upgrade: str) -> None:
    """Whatever order titles arrive in, total granted = the highest title's amount (pay_difference) or the first
    one's (nothing); never more than the highest, never negative."""
    policy = city(upgrade)
    priors: list[calc.PriorAward] = []
    for i, (tier, level) in enumerate(seq):
        c = calc.tier_reward(policy, tier, level, prior=priors)
        assert c.amount >= 0
        priors.append(calc.PriorAward(f"tier:{tier}:{level}", c.reference, c.amount, 2020 + i))
    total = sum((p.granted for p in priors), D(0))
    highest = max(p.reference for p in priors)
    assert total <= highest
    if upgrade == "pay_difference":
        assert total == highest
    else:
        assert total == priors[0].reference


@given(amounts, st.sampled_from(["0.05", "0.10", "0.20"]), amounts)
def test_percentage_respects_cap_and_rounding(base: Decimal, rate: str, cap: Decimal) -> None:
    c = calc.percentage(pct(rate, str(cap)), base)
    assert c.amount == min(q(base * D(rate)), q(cap))
    assert c.amount == q(c.amount)


@given(st.lists(amounts, min_size=1, max_size=8))
def test_enterprise_cap_holds_over_many_applications(bases: list[Decimal]) -> None:
    p = pct("0.10", "3000000", "enterprise")
    granted = D(0)
    for b in bases:
        granted += calc.percentage(p, b, previously_granted=granted).amount
    assert granted <= D("3000000")
    assert granted == min(q(sum((q(b * D("0.10")) for b in bases), D(0))), D("3000000.00"))
