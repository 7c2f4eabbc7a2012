"""Bad rule files fail at load with the file, the dotted path in the YAML and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.evaluation.domain.loader import DEFAULT_DIR, RuleSetError, load_all, load_cases, load_ruleset_file

GOOD = DEFAULT_DIR / "MIIT-2022-63-innovative.yaml"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def _mutated(tmp_path: Path, old: str, new: str, name: str = "MIIT-2022-63-innovative.yaml") -> Path:
    text = GOOD.read_text(encoding="utf-8")
    assert old in text
    return _write(tmp_path, name, text.replace(old, new, 1))


def test_shipped_rulesets_load() -> None:
    ids = {rs.id for rs in load_all()}
    assert {"MIIT-2022-63-innovative", "MIIT-2022-63-srdi", "MIIT-2022-63-little_giant"} <= ids


def test_unknown_metric_reports_file_path_and_reason(tmp_path: Path) -> None:
    bad = _mutated(tmp_path, "metric: rd_ratio\n", "metric: rd_ratoi\n")
    with pytest.raises(RuleSetError) as ei:
        load_ruleset_file(bad)
    err = ei.value
    assert err.file == str(bad)
    assert err.path == "items.1.scales.0.metric"
    assert "rd_ratoi" in err.reason
    assert str(bad) in str(err) and err.path in str(err) and err.reason in str(err)


def test_band_points_above_item_maximum(tmp_path: Path) -> None:
    bad = _mutated(tmp_path, '{label: A, min: "5%", points: 20}', '{label: A, min: "5%", points: 25}')
    with pytest.raises(RuleSetError) as ei:
        load_ruleset_file(bad)
    assert ei.value.path == "items.1"
    assert "超过该项满分" in ei.value.reason


def test_inverted_band_edges(tmp_path: Path) -> None:
    old = '{label: B, min: "3%", max: "5%", points: 15}'
    bad = _mutated(tmp_path, old, old.replace('min: "3%", max: "5%"', 'min: "5%", max: "3%"'))
    with pytest.raises(RuleSetError) as ei:
        load_ruleset_file(bad)
    assert ei.value.path == "items.1.scales.0.bands.1"
    assert "下限" in ei.value.reason


def test_numeric_op_needs_number(tmp_path: Path) -> None:
    bad = _mutated(tmp_path, "    value: 500万\n", "    value: 很多\n")
    with pytest.raises(RuleSetError) as ei:
        load_ruleset_file(bad)
    assert ei.value.path == "direct_routes.3"
    assert "数值" in ei.value.reason


def test_missing_required_field(tmp_path: Path) -> None:
    bad = _mutated(tmp_path, "document_number: 工信部企业〔2022〕63号\n", "")
    with pytest.raises(RuleSetError) as ei:
        load_ruleset_file(bad)
    assert ei.value.path == "document_number"
    assert "required" in ei.value.reason.lower()


def test_bad_tier_and_jurisdiction(tmp_path: Path) -> None:
    with pytest.raises(RuleSetError) as ei:
        load_ruleset_file(_mutated(tmp_path, "tier: innovative", "tier: giant"))
    assert ei.value.path == "tier"
    with pytest.raises(RuleSetError) as ei:
        load_ruleset_file(_mutated(tmp_path, "jurisdiction: national", "jurisdiction: zhejiang"))
    assert ei.value.path == "jurisdiction"


def test_unknown_key_is_rejected(tmp_path: Path) -> None:
    bad = _mutated(tmp_path, "pass_score: 60\n", "pass_score: 60\npass_scroe: 50\n")
    with pytest.raises(RuleSetError) as ei:
        load_ruleset_file(bad)
    assert ei.value.path == "pass_scroe"


def test_id_must_match_file_name(tmp_path: Path) -> None:
    bad = _mutated(tmp_path, "id: MIIT-2022-63-innovative", "id: MIIT-2022-63-other")
    with pytest.raises(RuleSetError) as ei:
        load_ruleset_file(bad)
    assert ei.value.path == "id"


def test_yaml_syntax_error_has_line(tmp_path: Path) -> None:
    bad = _write(tmp_path, "X.yaml", "id: X\nitems: [\n  {code: a: b}\n")
    with pytest.raises(RuleSetError) as ei:
        load_ruleset_file(bad)
    assert ei.value.path.startswith("line ")
    assert "YAML" in ei.value.reason


def test_category_reference_must_exist(tmp_path: Path) -> None:
    old = "    category: growth\n    max_points: 10\n"
    bad = _mutated(tmp_path, old, old.replace("growth", "growthh"))
    with pytest.raises(RuleSetError) as ei:
        load_ruleset_file(bad)
    assert "growthh" in ei.value.reason


def test_load_all_reports_the_bad_file(tmp_path: Path) -> None:
    _write(tmp_path, "MIIT-2022-63-innovative.yaml", GOOD.read_text(encoding="utf-8"))
    bad = _mutated(tmp_path, "version: 1", "version: 0", name="MIIT-2022-63-innovative-v0.yaml")
    with pytest.raises(RuleSetError) as ei:
        load_all(tmp_path)
    assert ei.value.file == str(bad)
    assert ei.value.path == "version"


def test_extends_inherits_and_overrides(tmp_path: Path) -> None:
    _write(tmp_path, "MIIT-2022-63-innovative.yaml", GOOD.read_text(encoding="utf-8"))
    child = _write(
        tmp_path,
        "X-2030-innovative.yaml",
        "extends: MIIT-2022-63-innovative.yaml\nid: X-2030-innovative\nfamily: X-2030\nversion: 2\n"
        "effective_from: 2030-01-01\neffective_to: null\npass_score: 70\n",
    )
    rs = load_ruleset_file(child)
    assert rs.id == "X-2030-innovative" and rs.version == 2 and rs.pass_score == 70
    assert len(rs.items) == 6 and rs.document_number == "工信部企业〔2022〕63号"
    assert rs.metadata["extends"] == "MIIT-2022-63-innovative.yaml"


def test_bad_case_file(tmp_path: Path) -> None:
    bad = _write(
        tmp_path,
        "c.yaml",
        "ruleset: X\nas_of: 2025-01-01\ncases:\n  - name: a\n"
        "    indicators: {rd_expense: -5}\n    expect: {eligible: true}\n",
    )
    with pytest.raises(RuleSetError) as ei:
        load_cases(bad)
    assert ei.value.path == "cases.0.facts.indicators.rd_expense"


FEATURE_2024 = """
province: "330000"
from_year: 2024
max_points: 15
unconfirmed: true
items:
  - code: listing
    name: 上市进展
    category: feature
    max_points: 15
    options:
      - {label: 已上市, when: {metric: local.listing_stage, op: "==", value: listed}, points: 15}
"""


def test_local_features_are_chosen_by_province_and_year(tmp_path: Path) -> None:
    from datetime import date
    from decimal import Decimal

    from services.evaluation.domain.engine import evaluate
    from services.evaluation.domain.facts import EnterpriseFacts
    from shared.indicators import IndicatorSet

    (tmp_path / "local_features").mkdir()
    for name in ("MIIT-2022-63-srdi.yaml", "local_features/330000-2022.yaml"):
        (tmp_path / name).write_text((DEFAULT_DIR / name).read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "local_features/330000-2024.yaml").write_text(FEATURE_2024, encoding="utf-8")
    rs = load_ruleset_file(tmp_path / "MIIT-2022-63-srdi.yaml")
    ind = IndicatorSet(zj_key_industry="9", market_share_pct=Decimal(12), local_indicators={"listing_stage": "listed"})

    def feature_points(year: int, region: str = "330110") -> Decimal | None:
        facts = EnterpriseFacts(indicators=ind, region_code=region, reporting_year=year)
        res = evaluate(rs, facts, date(year + 1, 6, 30))
        return next(i.points for i in res.items if i.code == "local_features")

    assert feature_points(2023) == 15  # 2022 config: 5 (key industry) + 5 (share ≥ 10%) + 5 (listed)
    assert feature_points(2024) == 15  # 2024 config: listed → 15
    ind.local_indicators["listing_stage"] = "filed"
    assert feature_points(2023) == 13 and feature_points(2024) == 0
    assert feature_points(2024, region="320100") == 0  # no Jiangsu configuration


def test_bad_local_feature_file(tmp_path: Path) -> None:
    from services.evaluation.domain.loader import load_local_features

    text = FEATURE_2024.replace("max_points: 15\n    options", "max_points: 20\n    options")
    (tmp_path / "330000-2030.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(RuleSetError) as ei:
        load_local_features(tmp_path)
    assert ei.value.file.endswith("330000-2030.yaml")
    assert "超过" in ei.value.reason
