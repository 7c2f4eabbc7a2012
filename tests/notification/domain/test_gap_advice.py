"""Gap advice rules and sentences (pure)."""

from __future__ import annotations

from decimal import Decimal

from services.notification.domain.gap_advice import (
    AdviceConfig,
    GapItem,
    Reward,
    gap_sentence,
    nearness,
    reward_sentence,
    yuan,
)

RD = GapItem(code="rd", description="…需增加研发费用 ¥600,000.00", metric="rd_ratio", yuan_needed=Decimal("600000.00"))
REV = GapItem(code="rev", description="营业收入 …", metric="operating_revenue", yuan_needed=Decimal("400000.01"))
AGE = GapItem(code="age", description="成立年限: 不满3年", required="≥ 3年")
DEBT = GapItem(code="debt", description="资产负债率 75% → 70%: 超出5个百分点, 按当前数据需减少负债 ¥300,000.00",
               metric="debt_ratio", yuan_needed=Decimal("300000"))


def test_money_gaps_within_the_configured_total_are_near() -> None:
    config = AdviceConfig()
    assert nearness(False, 1, [RD], config) == nearness(False, None, [RD], config)
    assert nearness(False, 2, [RD, REV], config) is None  # ¥1,000,000.01 > the default ¥1,000,000
    near = nearness(False, 2, [RD, REV], AdviceConfig(max_yuan_gap=Decimal("1000000.01")))
    assert near is not None and near.unmet == 2 and near.yuan_gap == Decimal("1000000.01")
    assert nearness(False, 2, [RD, REV], AdviceConfig(max_yuan_gap=Decimal("1000000.00"))) is None
    assert nearness(True, 1, [RD], config) is None  # eligible
    assert nearness(False, 1, [], config) is None  # no gaps published: nothing to say
    # a second unmet condition without a gap entry means the money alone does not make it
    assert nearness(False, 2, [RD], config) is None
    assert nearness(False, ["rd: …", "x: …"], [RD], config) is None


def test_non_money_gaps_only_with_the_unmet_count_rule() -> None:
    assert nearness(False, 2, [RD, AGE], AdviceConfig()) is None
    near = nearness(False, 2, [RD, AGE], AdviceConfig(max_unmet=2))
    assert near is not None and near.unmet == 2 and near.yuan_gap is None
    assert nearness(False, 3, [RD, AGE], AdviceConfig(max_unmet=2)) is None
    money = nearness(False, 1, [RD], AdviceConfig())
    assert money is not None and near is not None and money.sort_key < near.sort_key


def test_sentences_in_plain_chinese_with_yuan() -> None:
    label = "省级专精特新中小企业"
    assert gap_sentence(RD, label) == "研发费用再增加 ¥600,000 即满足省级专精特新中小企业的研发投入条件"
    assert gap_sentence(REV, label) == "营业收入再增加 ¥400,000.01 即满足省级专精特新中小企业的营业收入条件"
    assert gap_sentence(DEBT, label) == "负债再减少 ¥300,000 即满足省级专精特新中小企业的资产负债率条件"
    assert gap_sentence(AGE, label) == "成立年限: 不满3年"
    assert yuan(Decimal("1234567.5")) == "¥1,234,567.50"
    assert reward_sentence(label, []) == ""
    text = reward_sentence(label, [Reward("县(市、区)", "区奖励", Decimal("200000")),
                                   Reward("市", "市奖励", Decimal("500000.00"))])
    assert "合计约 ¥700,000" in text and "县(市、区)“区奖励”¥200,000" in text
