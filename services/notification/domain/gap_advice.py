"""精准服务 gap advice (pure): is a not-yet-eligible result near enough to a tier to tell the enterprise, and the
plain-Chinese sentences that say what is missing and what the tier would bring.

Near means either every unmet condition has a money gap (``yuan_needed``) and together they come to at most
``max_yuan_gap`` yuan, or (when ``max_unmet`` is set) at most ``max_unmet`` conditions are unmet whatever they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from pydantic import BaseModel, Field


class AdviceConfig(BaseModel):
    """How near counts as near (notification configuration, ``ZJTX_GAP_ADVICE_*`` in ``config.py``)."""

    max_yuan_gap: Decimal = Field(Decimal("1000000"), ge=0, description="资金差距合计上限(元)")
    max_unmet: int | None = Field(None, ge=1, description="未满足条件数上限(不论是否为资金差距);空表示不用此规则")


@dataclass(frozen=True)
class GapItem:
    """One unmet condition's gap as evaluation describes it."""

    code: str
    description: str
    metric: str | None = None
    required: str | None = None
    yuan_needed: Decimal | None = None


@dataclass(frozen=True)
class Nearness:
    unmet: int
    yuan_gap: Decimal | None  # the total when every unmet condition is a money gap, else None

    @property
    def sort_key(self) -> tuple[int, int, Decimal]:
        """Nearest first: money gaps before other gaps, then fewer unmet conditions, then fewer yuan."""
        return (0 if self.yuan_gap is not None else 1, self.unmet, self.yuan_gap or Decimal(0))


def nearness(
    eligible: bool, unmet: int | Sequence[object] | None, gaps: Sequence[GapItem], config: AdviceConfig
) -> Nearness | None:
    """How near a result is, or None when it is eligible, says nothing about its gaps, or is too far."""
    if eligible or not gaps:
        return None
    codes = {g.code for g in gaps}
    if isinstance(unmet, int):
        count = unmet
    elif unmet is not None:
        count = len(unmet)
    else:
        count = len(codes)
    count = max(count, len(codes))
    money = all(g.yuan_needed is not None and g.yuan_needed > 0 for g in gaps) and count == len(codes)
    total = sum((g.yuan_needed or Decimal(0) for g in gaps), Decimal(0)) if money else None
    if total is not None and total <= config.max_yuan_gap:
        return Nearness(count, total)
    if config.max_unmet is not None and count <= config.max_unmet:
        return Nearness(count, total)
    return None


# metric → (the money that moves it, the condition's name in advice)
_MONEY: dict[str, tuple[str, str]] = {
    "rd_ratio": ("研发费用", "研发投入"),
    "rd_ratio_prev1": ("研发费用", "研发投入"),
    "rd_ratio_min_2y": ("研发费用", "研发投入"),
    "rd_expense": ("研发费用", "研发投入"),
    "rd_expense_min_2y": ("研发费用", "研发投入"),
    "rd_expense_sum_2y": ("研发费用", "研发投入"),
    "rd_expense_avg_2y": ("研发费用", "研发投入"),
    "main_business_share": ("主营业务收入", "主营业务占比"),
    "main_business_revenue": ("主营业务收入", "主营业务收入"),
    "main_business_avg_3y": ("主营业务收入", "主营业务收入"),
    "operating_revenue": ("营业收入", "营业收入"),
    "net_profit": ("净利润", "净利润"),
    "net_margin": ("净利润", "利润率"),
    "tax_paid": ("纳税额", "纳税"),
    "debt_ratio": ("负债", "资产负债率"),
}
_DECREASE = frozenset({"debt_ratio"})


def yuan(amount: Decimal) -> str:
    """``¥600,000`` for whole yuan, ``¥600,000.50`` otherwise."""
    return f"¥{amount:,.0f}" if amount == amount.to_integral_value() else f"¥{amount:,.2f}"


def gap_sentence(gap: GapItem, tier_label: str) -> str:
    """``研发费用再增加 ¥600,000 即满足省级专精特新中小企业的研发投入条件``; the evaluation's own description for a
    gap that is not a money gap."""
    if gap.yuan_needed is None or gap.yuan_needed <= 0:
        return gap.description
    word, condition = _MONEY.get(gap.metric or "", ("相关资金", gap.required or gap.code))
    verb = "减少" if gap.metric in _DECREASE or "需减少" in gap.description else "增加"
    return f"{word}再{verb} {yuan(gap.yuan_needed)} 即满足{tier_label}的{condition}条件"


@dataclass(frozen=True)
class Reward:
    level_name: str  # 县级 / 市级 / 省级: whose policy
    policy_name: str
    amount: Decimal


def reward_sentence(tier_label: str, rewards: Sequence[Reward]) -> str:
    """What the tier would bring under the in-force policies of the enterprise's county, city and province."""
    if not rewards:
        return ""
    total = sum((r.amount for r in rewards), Decimal(0))
    parts = "、".join(f"{r.level_name}“{r.policy_name}”{yuan(r.amount)}" for r in rewards)
    return f"认定为{tier_label}后,按现行政策可获一次性奖励合计约 {yuan(total)}({parts}),以核定为准。"


def advice_text(tier_label: str, gaps: Sequence[GapItem]) -> str:
    """The gap sentences of one tier, joined."""
    return ";".join(gap_sentence(g, tier_label) for g in gaps)
