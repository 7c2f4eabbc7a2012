"""Rule-set selection by date and jurisdiction, and the shape of the explanation."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

from services.evaluation.domain.engine import EvaluationResult, evaluate
from services.evaluation.domain.facts import EnterpriseFacts, HeldTitle
from services.evaluation.domain.loader import load_all
from services.evaluation.domain.rules import RuleSet
from services.evaluation.domain.selection import DEFAULT_RULESETS, in_force
from shared.indicators import IndicatorSet

ALL = load_all()
BY_ID = {r.id: r for r in ALL}


def _ids(rs: list[RuleSet]) -> set[str]:
    return {r.id for r in rs}


def test_2022_rules_end_on_2026_03_31_and_2026_rules_start_next_day() -> None:
    before = _ids(in_force(ALL, date(2026, 3, 31), "330110", "srdi"))
    after = _ids(in_force(ALL, date(2026, 4, 1), "330110", "srdi"))
    assert "MIIT-2022-63-srdi" in before and "MIIT-2026-2-srdi" not in before
    assert "MIIT-2026-2-srdi" in after and "MIIT-2022-63-srdi" not in after
    assert "YH-2022-district-srdi" in before and "YH-2022-district-srdi" in after


def test_jurisdiction_coverage() -> None:
    day = date(2025, 9, 30)
    yuhang = _ids(in_force(ALL, day, "330110"))
    xiaoshan = _ids(in_force(ALL, day, "330109"))
    jiangsu = _ids(in_force(ALL, day, "320100"))
    unknown = _ids(in_force(ALL, day, None))
    assert {"ZJ-2025-233-hidden_champion", "YH-2022-district-srdi", "MIIT-2022-63-innovative"} <= yuhang
    assert "ZJ-2025-233-hidden_champion" in xiaoshan and "YH-2022-district-srdi" not in xiaoshan
    assert "ZJ-2025-233-hidden_champion" not in jiangsu and "MIIT-2023-single_champion" in jiangsu
    assert all(BY_ID[i].jurisdiction == "national" for i in unknown)
    assert "ZJ-2025-233-hidden_champion" not in _ids(in_force(ALL, date(2024, 12, 31), "330110"))


def test_city_jurisdiction_covers_its_counties() -> None:
    rs = BY_ID["YH-2022-district-srdi"].model_copy(update={"jurisdiction": "330100", "level": "city"})
    assert rs.covers_region("330110") and rs.covers_region("330100")
    assert not rs.covers_region("330200")


def test_highest_version_wins() -> None:
    base = BY_ID["MIIT-2022-63-innovative"]
    v2 = base.model_copy(update={"version": 2, "pass_score": Decimal(70)})
    chosen = in_force([base, v2], date(2025, 1, 1), "330110", "innovative")
    assert len(chosen) == 1 and chosen[0].version == 2


def test_default_rulesets_load_lazily() -> None:
    assert len(DEFAULT_RULESETS) == len(ALL)
    assert {r.id for r in DEFAULT_RULESETS} == set(BY_ID)


def _srdi_facts(**over: object) -> EnterpriseFacts:
    ind = {
        "operating_revenue": Decimal("50000000"),
        "main_business_revenue": Decimal("45000000"),
        "main_business_revenue_prev1": Decimal("40000000"),
        "main_business_revenue_prev2": Decimal("35000000"),
        "niche_years": Decimal(5),
        "rd_expense": Decimal("1050000"),
        "total_assets": Decimal("40000000"),
        "total_liabilities": Decimal("16000000"),
        "abnormal_operation": False,
        "serious_dishonesty": False,
        "major_accident_3y": False,
        **over,
    }
    return EnterpriseFacts(indicators=IndicatorSet.model_validate(ind), region_code="330110")


def test_gap_in_own_unit_and_in_yuan_at_current_revenue() -> None:
    # 研发费用占比 2.1% → 3%: +0.9 个百分点, +¥450,000 at revenue 5000万
    res = evaluate(BY_ID["MIIT-2022-63-srdi"], _srdi_facts(), date(2025, 6, 30))
    gap = next(g for g in res.gaps if g.code == "rd_input")
    assert gap.metric == "rd_ratio"
    assert gap.current == "2.1%" and gap.required == "≥ 3%"
    assert gap.shortfall == Decimal("0.009")
    assert gap.shortfall_display == "0.9个百分点"
    assert gap.yuan_needed == Decimal("450000.00")
    assert "研发费用占营业收入比重 2.1% → 3%" in gap.description and "45万元" in gap.description


def test_missing_data_is_unmet_with_reason() -> None:
    res = evaluate(BY_ID["MIIT-2022-63-srdi"], _srdi_facts(niche_years=None), date(2025, 6, 30))
    assert not res.eligible
    item = next(i for i in res.items if i.code == "niche_years")
    assert item.met is False and item.reason == "缺少数据"
    assert any(u.startswith("niche_years:") and "缺少数据" in u for u in res.unmet)


def test_explanation_is_json_serialisable_and_complete() -> None:
    res = evaluate(BY_ID["MIIT-2022-63-innovative"], _srdi_facts(rd_expense=Decimal("2500000")), date(2025, 6, 30))
    dumped = res.model_dump(mode="json")
    text = json.dumps(dumped, ensure_ascii=False)
    back = EvaluationResult.model_validate_json(text)
    assert back.score == res.score and back.items == res.items
    rd = next(i for i in res.items if i.code == "rd_ratio")
    assert rd.inputs == {"rd_expense": Decimal("2500000"), "operating_revenue": Decimal("50000000")}
    assert rd.value == Decimal("0.05") and rd.value_display == "5%"
    assert rd.band == "A [5%, +∞)" and rd.points == 20 and rd.max_points == 20
    assert rd.source and "附件1" in rd.source
    assert dumped["ruleset_id"] == "MIIT-2022-63-innovative" and dumped["ruleset_version"] == 1


def test_prerequisite_result_lists_validity() -> None:
    facts = _srdi_facts()
    title = HeldTitle(tier="srdi", level="province", valid_from=date(2023, 1, 1), valid_to=date(2025, 12, 31))
    facts.titles.append(title)
    res = evaluate(BY_ID["MIIT-2022-63-little_giant"], facts, date(2025, 6, 30))
    pre = res.prerequisites[0]
    assert pre.met and pre.applicable and pre.title_valid_to == date(2025, 12, 31)
    res2 = evaluate(BY_ID["MIIT-2022-63-little_giant"], facts, date(2026, 1, 1))
    assert not res2.prerequisites[0].met and "有效期" in (res2.prerequisites[0].reason or "")


def test_ruleset_json_round_trip_evaluates_identically() -> None:
    """Rule sets are stored in the DB as JSON: a reloaded rule set must give the same results."""
    from services.evaluation.domain.loader import DEFAULT_DIR, load_cases

    for f in sorted((DEFAULT_DIR / "cases").glob("*.yaml")):
        cases = load_cases(f)
        rs = BY_ID[cases[0].ruleset]
        for by_alias in (False, True):
            again = RuleSet.model_validate_json(json.dumps(rs.model_dump(mode="json", by_alias=by_alias)))
            assert again.model_dump() == rs.model_dump()
            for c in cases:
                a, b = evaluate(rs, c.facts, c.as_of), evaluate(again, c.facts, c.as_of)
                assert a.model_dump() == b.model_dump(), (rs.id, c.name)
