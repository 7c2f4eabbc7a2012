"""Random enterprise facts for the rules-engine tests and the frozen explanation corpus: missing values, band
edges, titles (some revoked), honours, awards, 创客中国, local indicators of several types, several regions and
reporting years. Deterministic for a given ``random.Random``."""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from services.evaluation.domain.facts import EnterpriseFacts, HeldTitle
from shared.indicators import IndicatorSet

_MONEY = ["operating_revenue", "operating_revenue_prev1", "operating_revenue_prev2", "main_business_revenue",
          "main_business_revenue_prev1", "main_business_revenue_prev2", "rd_expense", "rd_expense_prev1",
          "total_assets", "total_liabilities", "equity_financing_2y", "equity_financing_3y", "tax_paid"]
_SIGNED = ["net_profit", "net_profit_prev1", "net_profit_prev2"]
_COUNTS = ["employees", "rd_staff", "ip_class1_high_value", "ip_class1_self_developed", "ip_class1", "ip_class2",
           "ip_class1_applied", "main_products_count", "standards_participated"]
_BOOLS = ["info_system_core_business", "quality_award_provincial", "quality_system_certified",
          "mgmt_system_certified", "intl_certification", "own_brand", "chain_key_role", "six_foundations",
          "time_honoured_brand", "serves_chain_leader", "major_accident_3y", "serious_dishonesty",
          "abnormal_operation"]


def random_facts(rng: random.Random) -> EnterpriseFacts:
    ind: dict[str, Any] = {}
    base = rng.choice([0, 10_000_000, 15_000_000, 50_000_000, 100_000_000, 400_000_000, 1_000_000_000])
    for f in _MONEY:
        if rng.random() < 0.85:
            ind[f] = str(Decimal(int(base * rng.choice([0, 0.01, 0.03, 0.05, 0.5, 0.55, 0.7, 0.8, 1, 1.2]))
                                + rng.choice([0, 1, 50])).quantize(Decimal("0.01")))
    for f in _SIGNED:
        if rng.random() < 0.8:
            ind[f] = str(Decimal(rng.randint(-5_000_000, 30_000_000)))
    for f in _COUNTS:
        if rng.random() < 0.8:
            ind[f] = rng.choice([0, 1, 2, 3, 5, 10, 50, 300])
    for f in _BOOLS:
        if rng.random() < 0.7:
            ind[f] = rng.random() < 0.3
    for f, choices in {
        "niche_years": ["0", "2", "3", "5", "10", "15"], "market_share_pct": ["5", "10", "20", "30"],
        "market_rank_national": [1, 3, 5, 10], "market_rank_global": [1, 3, 5], "digital_level": [0, 1, 2, 3, 4],
        "rd_institution_level": ["none", "below_city", "city", "province", "national"],
        "strategic_emerging_category": [1, 3, 7], "maker_china_national_top": [50, 500],
        "maker_china_year": [2021, 2023, 2024], "zj_key_industry": ["415X", "other"],
        "cnc_rate_pct": ["40", "60", "80"], "bank_credit_rating": ["AAA", "A"],
    }.items():
        if rng.random() < 0.6:
            ind[f] = rng.choice(choices)
    if rng.random() < 0.4:
        ind["honours"] = [{"code": rng.choice(["high_tech_enterprise", "tech_sme", "ip_demo"]),
                           "valid_until": rng.choice([None, "2024-12-31", "2027-12-31"])}]
    if rng.random() < 0.3:
        ind["sci_awards"] = [{"level": rng.choice(["provincial", "national"]), "rank": rng.randint(1, 6),
                              "year": rng.choice([2020, 2023, 2025])}]
    if rng.random() < 0.5:
        ind["local_indicators"] = {k: rng.choice([Decimal("1"), Decimal("30"), True, False, "A"])
                                   for k in ("listing_stage", "x") if rng.random() < 0.6}
        if "listing_stage" in ind["local_indicators"]:
            ind["local_indicators"]["listing_stage"] = rng.choice(["listed", "filed", "tutoring", "none"])
    titles = []
    for tier in ("innovative", "srdi", "little_giant", "hidden_champion"):
        if rng.random() < 0.4:
            start = date(2020, 1, 1) + timedelta(days=rng.randint(0, 2000))
            titles.append(HeldTitle(tier=tier, level=rng.choice(["province", "national", "city"]),
                                    valid_from=start, valid_to=start + timedelta(days=3 * 365 - 1),
                                    revoked=rng.random() < 0.15))
    return EnterpriseFacts(
        indicators=IndicatorSet.model_validate(ind), titles=titles,
        founded_on=rng.choice([None, date(2010, 5, 1), date(2023, 3, 2)]),
        region_code=rng.choice(["330110", "330102", "330205", "320100", None]),
        industry_code=rng.choice([None, "C3911", "I6510"]), is_manufacturing=rng.choice([None, True, False]),
        reporting_year=rng.choice([None, 2023, 2024, 2025]), is_recheck=rng.random() < 0.2,
    )
